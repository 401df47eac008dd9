//! The candle integration and the test oracle: the MSDnet expressed in candle's terms, for people
//! who build on candle and for checking the hand-written kernels against an independent road.
//!
//! - [`MsdBlockOp`] / [`msd_block`] (`block_op.rs`): the 3×3 block as a candle custom op whose
//!   forward and backward call the kernels, so a network built around it trains through candle's
//!   autograd and optimisers at the kernels' speed (the way candle is extended: through its hooks,
//!   not a fork).
//! - [`CandleBackend`] (`backend.rs`): the crate's [`Backend`](crate::Backend) run entirely through
//!   candle — parameters as `Var`s, [`msd_block`] plus candle's final layer, softmax and loss,
//!   `loss.backward()` and Adam on the variables — so the same training loop exercises the
//!   integration end to end ([`Engine::Candle`](crate::Engine::Candle)).
//! - [`CandleMsd`] and [`symmetric_pad`] (`oracle.rs`): the network composed from candle's own
//!   `conv2d` with explicit mirrored padding and `cat`, no hand-written kernel involved: the oracle
//!   the kernels are tested against and the baseline they are benchmarked against. Slow and
//!   memory-hungry by design, the most literal reading of the architecture.
//!
//! Everything here runs on candle's CPU device; the GPU path is the crate's own CUDA backend.
mod backend;
mod block_op;
mod oracle;

pub use backend::CandleBackend;
pub use block_op::{MsdBlockOp, msd_block};
pub use oracle::{CandleMsd, symmetric_pad};
