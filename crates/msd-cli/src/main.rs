//! The `msd` command: CT to skull STL, training, segmentation, evaluation and a built-in demo.
//!
//! Every subcommand is a thin layer over the `msd` facade crate: parse arguments, show progress,
//! call the library, print the result. Errors print as one line, `msd: ` followed by the cause
//! chain; the exit status is 0 on success, 1 when the work failed, 2 for a usage error.
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

mod cli;
mod commands;
mod demo;
mod ui;

use cli::{Cli, Command};
pub(crate) use ui::{Ui, UsageError};

fn main() -> ExitCode {
    let matches =
        Cli::command().version(cli::short_version()).long_version(cli::long_version()).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let ui = Ui::new(cli.quiet);
    let result = match cli.command {
        Command::Info(args) => commands::info::run(&args),
        Command::Convert(args) => commands::convert::run(&args, &ui),
        Command::Train(args) => {
            let order =
                matches.subcommand_matches("train").map(commands::train::target_order).unwrap_or_default();
            commands::train::run(&args, &order, &ui)
        }
        Command::Segment(args) => commands::segment::run(&args, &ui),
        Command::Mesh(args) => commands::mesh::run(&args, &ui),
        Command::Label(args) => commands::label::run(&args, &ui),
        Command::Eval(args) => commands::eval::run(&args, &ui),
        Command::Implant(args) => commands::implant::run(&args, &ui),
        Command::Threshold(args) => commands::threshold::run(&args, &ui),
        Command::Demo(args) => commands::demo::run(&args, &ui),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("msd: {}", ui::error_chain(&err));
            if err.downcast_ref::<UsageError>().is_some() { ExitCode::from(2) } else { ExitCode::from(1) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().version(cli::short_version()).long_version(cli::long_version()).debug_assert();
    }
}
