//! The bulk product of one image row: `P[m][col0 + x] = Σ_k A[m][k] · X[k][x]` over pairs of bf16
//! (see `layout.rs`), summed in `f32`, on AMX tiles, with AVX512-BF16 dot products, or in portable
//! code.
//!
//! Shapes (checked once per call): `A` is `[rows][k_pairs]` with `rows` a multiple of 16 and
//! `k_pairs` of 16; the row of features `X` is `[k_pairs..][x_pad]` with `x_pad` a multiple of 32;
//! `P` is `[rows][p_stride]` with `col0 + x_pad ≤ p_stride`.
use super::Bf16Isa;
use super::convert::bf16_value;

/// One image row's bulk product.
pub(crate) struct RowProduct<'a> {
    /// The bulk matrix `[rows][k_pairs]`.
    pub a: &'a [u32],
    pub rows: usize,
    pub k_pairs: usize,
    /// The leading pairs that can hold a non-zero weight (≤ `k_pairs`): the vector path skips
    /// the rest, which AMX reads only because its tiles come in 16 pairs.
    pub k_used: usize,
    /// The leading rows that can hold a non-zero weight (≤ `rows`); rows after them are left
    /// as they were by the vector path.
    pub rows_used: usize,
    /// The image row's slot pairs, `[pairs][x_pad]`; the first `k_pairs` are read.
    pub x: &'a [u32],
    pub x_pad: usize,
}

impl RowProduct<'_> {
    fn check(&self, p: &[f32], p_stride: usize, col0: usize) {
        assert!(
            self.rows.is_multiple_of(16) && self.k_pairs.is_multiple_of(16) && self.x_pad.is_multiple_of(32),
            "bulk product of {} rows, {} pairs, {} pixels: not whole tiles",
            self.rows,
            self.k_pairs,
            self.x_pad
        );
        assert!(self.k_used <= self.k_pairs && self.rows_used <= self.rows, "used part outside the matrix");
        assert!(self.a.len() >= self.rows * self.k_pairs, "bulk matrix too short");
        assert!(self.x.len() >= self.k_pairs * self.x_pad, "feature row too short");
        assert!(col0 + self.x_pad <= p_stride && p.len() >= self.rows * p_stride, "partial rows too short");
    }

    /// Writes the product into `p` (`[rows][p_stride]`, columns `col0 .. col0 + x_pad`).
    pub(crate) fn run(&self, isa: Bf16Isa, p: &mut [f32], p_stride: usize, col0: usize) {
        self.check(p, p_stride, col0);
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `Bf16Isa` values other than `Portable` are only handed out after
            // `Bf16Isa::is_supported` (CPU features, and for AMX the OS permission) held; the
            // shapes were checked above.
            Bf16Isa::Amx => unsafe { x86::amx(self, p, p_stride, col0) },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above (AVX512-BF16 present).
            Bf16Isa::Avx512Bf16 => unsafe { x86::avx512bf16(self, p, p_stride, col0) },
            _ => self.portable(p, p_stride, col0),
        }
    }

    /// Plain loops. Each product of two bf16 values is exact in `f32`, so this differs from the
    /// vector paths only in the order of the additions.
    fn portable(&self, p: &mut [f32], p_stride: usize, col0: usize) {
        let lo = |v: u32| bf16_value(v as u16);
        let hi = |v: u32| bf16_value((v >> 16) as u16);
        for m in 0..self.rows {
            let out = &mut p[m * p_stride + col0..m * p_stride + col0 + self.x_pad];
            out.fill(0.0);
            for (k, &a) in self.a[m * self.k_pairs..(m + 1) * self.k_pairs].iter().enumerate() {
                if a == 0 {
                    continue;
                }
                let (a0, a1) = (lo(a), hi(a));
                for (o, &x) in out.iter_mut().zip(&self.x[k * self.x_pad..(k + 1) * self.x_pad]) {
                    *o += a0 * lo(x) + a1 * hi(x);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::asm;
    use std::arch::x86_64::{
        __m512, __m512bh, __m512i, _mm512_dpbf16_ps, _mm512_loadu_si512, _mm512_set1_epi32,
        _mm512_setzero_ps, _mm512_storeu_ps,
    };

    use super::RowProduct;

    /// Rows of `A` per register block of the AVX512-BF16 kernel. Each block holds `ROWS × V`
    /// accumulators (`V` vectors of 16 pixels), so each step over a pair loads `V` feature
    /// vectors and broadcasts `ROWS` weights for `ROWS · V` dot products.
    const ROWS: usize = 4;

    /// # Safety
    /// The CPU must support AVX-512F and AVX512-BF16; shapes as checked by `RowProduct::check`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn avx512bf16(r: &RowProduct<'_>, p: &mut [f32], p_stride: usize, col0: usize) {
        let rows = r.rows_used.next_multiple_of(ROWS);
        // Pixel blocks outermost: one block's features (`k_used` pairs × 64 pixels) stay in L1
        // for every row block of `A`, where rows outermost streamed the whole feature row from
        // L2 once per row block (measured on Zen 4: the loads stalled a third of the time).
        let mut x0 = 0;
        while x0 + 64 <= r.x_pad {
            for m0 in (0..rows).step_by(ROWS) {
                // SAFETY: m0 + ROWS ≤ rows ≤ r.rows, x0 + 64 ≤ x_pad; the caller's guarantees.
                unsafe { block::<4>(r, p, p_stride, col0 + x0, x0, m0) };
            }
            x0 += 64;
        }
        if x0 < r.x_pad {
            for m0 in (0..rows).step_by(ROWS) {
                // SAFETY: as above with 32 pixels (x_pad is a multiple of 32).
                unsafe { block::<2>(r, p, p_stride, col0 + x0, x0, m0) };
            }
        }
    }

    /// Rows `m0 .. m0 + ROWS` of `P` at pixels `x0 .. x0 + 16·V` (written at column `c0`).
    ///
    /// # Safety
    /// AVX-512F and AVX512-BF16; `m0 + ROWS ≤ r.rows`, `x0 + 16·V ≤ r.x_pad`, and the shapes of
    /// `RowProduct::check` with `c0 - x0` as its column.
    #[target_feature(enable = "avx512f,avx512bf16")]
    #[inline]
    unsafe fn block<const V: usize>(
        r: &RowProduct<'_>,
        p: &mut [f32],
        p_stride: usize,
        c0: usize,
        x0: usize,
        m0: usize,
    ) {
        let (a, x, kp, xp) = (r.a.as_ptr(), r.x.as_ptr(), r.k_pairs, r.x_pad);
        let mut acc: [[__m512; V]; ROWS] = [[_mm512_setzero_ps(); V]; ROWS];
        for k in 0..r.k_used {
            // SAFETY: k < k_pairs and x0 + 16·V ≤ x_pad: inside the feature row; a vector of 16
            // pairs reinterpreted as 32 bf16.
            let b: [__m512bh; V] = std::array::from_fn(|v| unsafe {
                std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(
                    x.add(k * xp + x0 + 16 * v).cast(),
                ))
            });
            for (i, acc) in acc.iter_mut().enumerate() {
                // SAFETY: m0 + i < rows, k < k_pairs.
                let w = unsafe { *a.add((m0 + i) * kp + k) };
                // SAFETY: a vector of 16 equal pairs, reinterpreted as 32 bf16.
                let w = unsafe { std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(w as i32)) };
                for (acc, &b) in acc.iter_mut().zip(&b) {
                    *acc = _mm512_dpbf16_ps(*acc, w, b);
                }
            }
        }
        let out = p.as_mut_ptr();
        for (i, acc) in acc.iter().enumerate() {
            for (v, acc) in acc.iter().enumerate() {
                // SAFETY: row m0 + i < rows, columns c0 .. c0 + 16·V ≤ col0 + x_pad ≤ p_stride.
                unsafe { _mm512_storeu_ps(out.add((m0 + i) * p_stride + c0 + 16 * v), *acc) };
            }
        }
    }

    /// The tile configuration of [`amx`]: palette 1, eight tiles of 16 rows × 64 bytes (C tiles
    /// 16 × 16 `f32`, A tiles 16 rows × 32 bf16, B tiles 16 pair rows × 16 pixels).
    #[repr(C, align(64))]
    struct TileConfig {
        palette: u8,
        start_row: u8,
        reserved: [u8; 14],
        colsb: [u16; 16],
        rows: [u8; 16],
    }

    const TILES: TileConfig = TileConfig {
        palette: 1,
        start_row: 0,
        reserved: [0; 14],
        colsb: [64, 64, 64, 64, 64, 64, 64, 64, 0, 0, 0, 0, 0, 0, 0, 0],
        rows: [16, 16, 16, 16, 16, 16, 16, 16, 0, 0, 0, 0, 0, 0, 0, 0],
    };

    /// Loads tile `$t` from `$ptr` with a row stride of `$stride` bytes.
    macro_rules! tile_load {
        ($t:literal, $ptr:expr, $stride:expr) => {
            asm!(concat!("tileloadd tmm", $t, ", [{p} + {s}*1]"), p = in(reg) $ptr, s = in(reg) $stride,
                 options(nostack, readonly, preserves_flags))
        };
    }
    /// Stores tile `$t` to `$ptr` with a row stride of `$stride` bytes.
    macro_rules! tile_store {
        ($t:literal, $ptr:expr, $stride:expr) => {
            asm!(concat!("tilestored [{p} + {s}*1], tmm", $t), p = in(reg) $ptr, s = in(reg) $stride,
                 options(nostack, preserves_flags))
        };
    }
    /// `tmm$c += tmm$a · tmm$b` over bf16 pairs, summed in `f32`.
    macro_rules! tile_dot {
        ($c:literal, $a:literal, $b:literal) => {
            asm!(
                concat!("tdpbf16ps tmm", $c, ", tmm", $a, ", tmm", $b),
                options(nostack, nomem, preserves_flags)
            )
        };
    }
    macro_rules! tile_zero {
        ($t:literal) => {
            asm!(concat!("tilezero tmm", $t), options(nostack, nomem, preserves_flags))
        };
    }

    /// The product on AMX tiles: blocks of 32 rows of `A` × 32 pixels in four accumulator tiles
    /// (tmm0–3), two `A` tiles (tmm4–5) and two feature tiles (tmm6–7) loaded per 32 slots.
    ///
    /// # Safety
    /// The CPU must support AMX-TILE and AMX-BF16 and the process must hold the OS permission for
    /// tile data (`super::super::amx::request_permission`); shapes as checked by
    /// `RowProduct::check`.
    pub(super) unsafe fn amx(r: &RowProduct<'_>, p: &mut [f32], p_stride: usize, col0: usize) {
        let (kp, xp) = (r.k_pairs, r.x_pad);
        let (a_stride, x_stride, p_bytes) = (kp * 4, xp * 4, p_stride * 4);
        let tiles = r.rows / 16;
        let a = |mt: usize, kc: usize| r.a[mt * 16 * kp + kc * 16..].as_ptr();
        let x = |kc: usize, x0: usize| r.x[kc * 16 * xp + x0..].as_ptr();
        let out = p.as_mut_ptr();
        // SAFETY: for every tile instruction below, the tiles are configured first; each load reads
        // 16 rows of 64 bytes at a checked stride inside `A` (rows mt·16.., pairs kc·16..) or the
        // feature row (pairs kc·16.., pixels x0..x0 + 16); each store writes 16 rows of 16 floats
        // inside `P` (rows mt·16.., columns col0 + x0..). The shapes were checked by the caller.
        // The caller also guarantees AMX and the process's permission for it.
        unsafe {
            asm!("ldtilecfg [{}]", in(reg) &TILES, options(nostack, readonly, preserves_flags));
            if kp == 16 {
                // One step of 32 slots (the first groups): the two feature tiles of a block stay
                // loaded for every row tile of `A`, and consecutive row tiles alternate between
                // two sets of registers (A in tmm4/tmm5, C in tmm0–1/tmm2–3), so that a load does
                // not wait for the product still reading the other set.
                for x0 in (0..xp).step_by(32) {
                    tile_load!(6, x(0, x0), x_stride);
                    tile_load!(7, x(0, x0 + 16), x_stride);
                    for mt in 0..tiles {
                        let c = out.add(mt * 16 * p_stride + col0 + x0);
                        if mt % 2 == 0 {
                            tile_load!(4, a(mt, 0), a_stride);
                            tile_zero!(0);
                            tile_zero!(1);
                            tile_dot!(0, 4, 6);
                            tile_dot!(1, 4, 7);
                            tile_store!(0, c, p_bytes);
                            tile_store!(1, c.add(16), p_bytes);
                        } else {
                            tile_load!(5, a(mt, 0), a_stride);
                            tile_zero!(2);
                            tile_zero!(3);
                            tile_dot!(2, 5, 6);
                            tile_dot!(3, 5, 7);
                            tile_store!(2, c, p_bytes);
                            tile_store!(3, c.add(16), p_bytes);
                        }
                    }
                }
                asm!("tilerelease", options(nostack, nomem, preserves_flags));
                return;
            }
            for x0 in (0..xp).step_by(32) {
                let mut mt = 0;
                while mt < tiles {
                    let two = mt + 1 < tiles;
                    tile_zero!(0);
                    tile_zero!(1);
                    if two {
                        tile_zero!(2);
                        tile_zero!(3);
                    }
                    for kc in 0..kp / 16 {
                        tile_load!(4, a(mt, kc), a_stride);
                        tile_load!(6, x(kc, x0), x_stride);
                        tile_load!(7, x(kc, x0 + 16), x_stride);
                        tile_dot!(0, 4, 6);
                        tile_dot!(1, 4, 7);
                        if two {
                            tile_load!(5, a(mt + 1, kc), a_stride);
                            tile_dot!(2, 5, 6);
                            tile_dot!(3, 5, 7);
                        }
                    }
                    let c = out.add(mt * 16 * p_stride + col0 + x0);
                    tile_store!(0, c, p_bytes);
                    tile_store!(1, c.add(16), p_bytes);
                    if two {
                        let c = out.add((mt + 1) * 16 * p_stride + col0 + x0);
                        tile_store!(2, c, p_bytes);
                        tile_store!(3, c.add(16), p_bytes);
                    }
                    mt += 2;
                }
            }
            asm!("tilerelease", options(nostack, nomem, preserves_flags));
        }
    }
}
