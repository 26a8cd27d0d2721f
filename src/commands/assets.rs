//! `assets` (hidden, for packaging): shell completions for bash, zsh and fish, and the man
//! page, generated from the CLI definition itself so they never drift from it.

use crate::Exit;

pub fn write(mut cmd: clap::Command, out: &std::path::Path) -> anyhow::Result<Exit> {
    std::fs::create_dir_all(out)?;
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(shell, &mut cmd, "okta-telus-sync", out)?;
    }
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd).render(&mut page)?;
    std::fs::write(out.join("okta-telus-sync.1"), page)?;
    Ok(Exit::Ok)
}
