//! `serve`: the read-only HTTP API ([`artifact_migrate::serve`]) on a loopback
//! address, until SIGINT or SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use artifact_migrate::error::ErrorKind;
use artifact_migrate::git::Repo;
use artifact_migrate::interrupt;
use artifact_migrate::serve::{parse_listen, run as serve, ServeOptions};

use crate::cli::index::location;
use crate::cli::{CommandError, Ctx};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The address to listen on (IP:PORT; port 0 picks a free one). Anything but loopback
    /// makes every manifest on the branch readable to whoever reaches it.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The index (as for `index`); created or brought up to date at start.
    #[arg(long, value_name = "URL")]
    pub db: Option<String>,
}

pub fn run(ctx: &Ctx, args: Args) -> Result<(), CommandError> {
    // Not `ctx.open()`: it may finish an interrupted run in the working tree, and `serve`
    // never writes to the repository.
    let repo = Repo::discover(&ctx.cwd)?;
    let cfg = ctx.config(&repo)?;
    let db = location(ctx, &repo, &cfg, args.db.as_deref())?;
    let (addr, loopback) = parse_listen(&args.listen).map_err(api)?;
    if !loopback {
        ctx.ui.warning(format_args!(
            "listening on {addr}, which is not a loopback address: every manifest on the branch becomes readable to whoever reaches it"
        ));
    }
    let opts = ServeOptions::new(repo.git_dir().to_path_buf(), cfg, db.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| CommandError::new(ErrorKind::Environment, format!("start the server: {e}")))?;
    // SIGINT/SIGTERM set a flag instead of ending the process; the server polls it and
    // stops accepting, finishes the requests under way, then exits by that signal.
    let _guard = interrupt::guard();
    let log: Arc<dyn Fn(&str) + Send + Sync> = Arc::new(|t: &str| eprintln!("warning: {t}"));
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
            CommandError::new(ErrorKind::Environment, format!("listen on {addr}: {e}"))
        })?;
        let local = listener.local_addr().map_err(|e| {
            CommandError::new(ErrorKind::Environment, format!("listen on {addr}: {e}"))
        })?;
        // Printed even with -q and --json: it says where the server is (port 0 picks one).
        ctx.ui.raw_stderr(
            format!(
                "serving http://{local}/ from the index {} (SIGINT or SIGTERM stops)\n",
                db.describe()
            )
            .as_bytes(),
        );
        let shutdown = async {
            while interrupt::requested().is_none() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        serve(listener, opts, shutdown, log).await.map_err(api)
    })?;
    if let Some(sig) = interrupt::requested() {
        ctx.ui.note(format_args!(
            "stopped by {}; every request under way was answered",
            interrupt::signal_name(sig)
        ));
    }
    Ok(())
}

fn api(e: artifact_migrate::serve::ApiError) -> CommandError {
    CommandError::new(e.kind, e.message)
}
