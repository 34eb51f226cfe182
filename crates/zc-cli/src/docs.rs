//! `zc completions` and `zc man`: generated from the clap definition, so they
//! list exactly the subcommands, options and possible values of this build.

use clap::Args;
use clap_complete::Shell;
use std::path::PathBuf;
use std::process::ExitCode;
use zc_core::{Error, Result};

/// Print a completion script.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  zc completions bash > ~/.local/share/bash-completion/completions/zc
  zc completions zsh > ~/.zfunc/_zc        # with fpath+=~/.zfunc in .zshrc
  zc completions fish > ~/.config/fish/completions/zc.fish")]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Print the manual page.
#[derive(Args, Debug, Clone)]
#[command(after_help = "\
Examples:
  zc man | man -l -                        # read it now
  zc man > /usr/local/share/man/man1/zc.1
  zc man --dir /usr/local/share/man/man1   # zc.1 and zc-recv.1, zc-bench.1, ...")]
pub struct ManArgs {
    /// Write zc.1 and a page per subcommand (zc-recv.1, ...) into this
    /// folder instead of printing zc.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn completions(a: CompletionsArgs) -> Result<ExitCode> {
    let mut cmd = crate::command();
    clap_complete::generate(a.shell, &mut cmd, "zc", &mut std::io::stdout());
    Ok(ExitCode::SUCCESS)
}

pub fn man(a: ManArgs) -> Result<ExitCode> {
    let cmd = crate::command();
    match a.dir {
        None => {
            let mut out = std::io::stdout().lock();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .map_err(|e| Error::io("write the manual page", e))?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::io(format!("create {}", dir.display()), e))?;
            clap_mangen::generate_to(cmd, &dir)
                .map_err(|e| Error::io(format!("write manual pages to {}", dir.display()), e))?;
            eprintln!("zc man: pages written to {}", dir.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
