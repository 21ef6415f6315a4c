//! The `till` binary: configuration, logging, start-up, graceful shutdown and subcommands.

mod lb_config;
mod seed;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use till_app::config::LogFormat;
use till_app::{App, Config};
use till_http::AppState;
use tokio::net::TcpListener;

/// mimalloc rather than glibc's malloc: profiling the liveness probe under load showed glibc's
/// malloc and free (with its arena consolidation) taking about 16 % of the process's samples; and
/// after 188 Argon2id sign-ins (each hash allocates 19 MiB) glibc kept an instance at 272 MiB,
/// mimalloc at 81 MiB (`loadtests/mixed.sh`). The price: idle RSS 41 MiB instead of 23.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "till",
    version,
    about = "Till: point-of-sale, inventory and order backend"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (and the static UI when STATIC_DIR is set).
    Serve,
    /// Run background jobs from the PostgreSQL queue (scale by running more).
    Worker,
    /// Apply pending database migrations.
    Migrate,
    /// Load data: `--demo` for a believable shop, `--products N` for a benchmark catalog.
    Seed {
        /// Categories, products with barcodes and stock, and staff accounts of every role.
        #[arg(long)]
        demo: bool,
        /// Add N generated products (with opening stock movements), in batched inserts.
        #[arg(long, value_name = "N")]
        products: Option<usize>,
    },
    /// Create an admin account (even when one exists).
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
    },
    /// Print a ready load-balancer configuration for several `till serve` instances.
    LbConfig(Box<lb_config::LbArgs>),
}

fn init_logging(cfg: &Config) {
    use tracing_subscriber::{fmt, EnvFilter};
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    match cfg.runtime.log_format {
        LogFormat::Json => fmt()
            .json()
            .with_env_filter(filter)
            .with_current_span(true)
            .init(),
        LogFormat::Pretty => fmt().with_env_filter(filter).compact().init(),
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    // Needs no database or secrets: runs before the configuration is read.
    if let Command::LbConfig(args) = &cli.command {
        return match lb_config::run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("till: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("till: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    match run(cli.command, config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("till: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => serve(config).await,
        Command::Worker => {
            let app = App::new(config)?;
            // Job counters go through the metrics facade: install the recorder first.
            till_http::metrics::prometheus();
            let cfg = app.config.worker.clone();
            let worker = till_server::jobs::production_worker(app.clone(), cfg.clone());
            // Up first, so monitoring sees this worker (unhealthy) even while it waits for the
            // schema.
            let (addr, health) = till_server::worker_http::bind(
                cfg.health_addr,
                app.clone(),
                worker.stats(),
                worker.id(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("WORKER_HEALTH_ADDR {}: {e}", cfg.health_addr))?;
            tracing::info!(%addr, "worker health and metrics listening");
            tokio::spawn(health);
            while !app.schema_is_current().await {
                tracing::warn!("database unreachable or migrations pending; waiting");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            // One shutdown for both halves: the job loops and the webhook deliveries.
            let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                shutdown_signal().await;
                let _ = stop_tx.send(true);
            });
            let deliveries = till_server::webhooks::Dispatcher::spawn(
                app.clone(),
                worker.id(),
                stop_rx.clone(),
            )?;
            let mut stopped = stop_rx;
            let jobs = worker.run(async move {
                let _ = stopped.wait_for(|s| *s).await;
            });
            let result = jobs.await;
            match tokio::task::spawn_blocking(move || deliveries.join()).await {
                Ok(Ok(Err(e))) => tracing::error!(error = %e, "webhook deliveries stopped"),
                Ok(Err(_)) => tracing::error!("webhook deliveries panicked"),
                _ => {}
            }
            result
        }
        Command::Migrate => {
            let app = App::new(config)?;
            app.db.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Seed { demo, products } => {
            if !demo && products.is_none() {
                anyhow::bail!("nothing to seed: pass --demo and/or --products N");
            }
            let app = App::new(config)?;
            ensure_schema(&app).await?;
            if demo {
                seed::demo(&app).await?;
            }
            if let Some(n) = products {
                seed::bench_products(&app, n).await?;
            }
            Ok(())
        }
        Command::CreateAdmin { email, password } => {
            let app = App::new(config)?;
            ensure_schema(&app).await?;
            if till_app::accounts::create_admin(&app, &email, &password, true).await? {
                println!("admin {email} created");
            } else {
                println!("an account with email {email} already exists; nothing changed");
            }
            Ok(())
        }
        Command::LbConfig(args) => lb_config::run(&args),
    }
}

async fn ensure_schema(app: &App) -> anyhow::Result<()> {
    if !app.schema_is_current().await {
        anyhow::bail!("the database schema is not up to date: run `till migrate` first");
    }
    Ok(())
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    let bind = config.http.bind_addr;
    let state = AppState::from_app(App::new(config)?)?;
    let listener = TcpListener::bind(bind).await?;
    let addr = listener.local_addr()?;

    // The first admin is created as soon as the schema is current; until then the API answers 503.
    let st = state.clone();
    tokio::spawn(async move {
        loop {
            if st.refresh_schema_ready().await {
                match till_app::accounts::bootstrap_admin(&st.app).await {
                    Ok(true) => tracing::info!("first admin created from ADMIN_EMAIL"),
                    Ok(false) => {}
                    Err(e) => tracing::error!("could not create the first admin: {e:#}"),
                }
                break;
            }
            tracing::warn!("database unreachable or migrations pending; the API answers 503 until `till migrate` runs");
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    });

    tracing::info!(
        %addr,
        instance = %state.config.runtime.instance_id,
        redis = state.store.is_redis(),
        startup_ms = started.elapsed().as_millis() as u64,
        "till listening"
    );
    till_http::serve(state, listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
