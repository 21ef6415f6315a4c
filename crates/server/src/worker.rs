//! `till worker`: runs jobs from the PostgreSQL queue.
//!
//! Each of `concurrency` loops claims one due job at a time (`FOR UPDATE SKIP LOCKED`, so workers
//! on many machines never take the same job), keeps its lease alive while the handler runs, and
//! records the outcome. A worker killed mid-job stops heartbeating; the lease runs out and another
//! worker runs the job again, so handlers are written to be idempotent. Failures are retried with
//! exponential backoff up to `max_attempts`. Recurring jobs re-enqueue themselves in the same
//! transaction that completes them, and never stop for good: a copy that fails for good is
//! followed by the next one a period later, and a scheduler re-creates any that went missing
//! (the database was down when the worker started, say) within [`SCHEDULE_EVERY`].

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use till_app::App;
use till_db::jobs::{self, JobRow, NewJob};
use tokio::sync::watch;
use tracing::Instrument;

pub use crate::worker_http::WorkerStats;

/// The worker's settings (`WORKER_*`), part of the application's configuration.
pub use till_app::config::WorkerConfig;

pub type JobResult = anyhow::Result<()>;

/// How often the worker makes sure every recurring job has a pending copy.
pub const SCHEDULE_EVERY: Duration = Duration::from_secs(30);
pub type Handler =
    Arc<dyn Fn(App, JobRow) -> Pin<Box<dyn Future<Output = JobResult> + Send>> + Send + Sync>;

pub struct Worker {
    app: App,
    config: WorkerConfig,
    id: String,
    stats: Arc<WorkerStats>,
    handlers: HashMap<String, Handler>,
    recurring: HashMap<String, Duration>,
}

impl Worker {
    /// A worker for `app` with `config` (usually `app.config.worker`; tests pass their own).
    pub fn new(app: App, config: WorkerConfig) -> Self {
        let id = format!(
            "{}-w{}",
            app.config.runtime.instance_id,
            &uuid::Uuid::now_v7().simple().to_string()[24..]
        );
        Worker {
            app,
            config,
            id,
            stats: Arc::default(),
            handlers: HashMap::new(),
            recurring: HashMap::new(),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// What the worker's health endpoint reads.
    pub fn stats(&self) -> Arc<WorkerStats> {
        self.stats.clone()
    }

    pub fn register<F, Fut>(&mut self, kind: &str, f: F) -> &mut Self
    where
        F: Fn(App, JobRow) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = JobResult> + Send + 'static,
    {
        self.handlers
            .insert(kind.to_owned(), Arc::new(move |s, j| Box::pin(f(s, j))));
        self
    }

    /// Runs `kind` every `every` (it must also be registered).
    pub fn every(&mut self, kind: &str, every: Duration) -> &mut Self {
        self.recurring.insert(kind.to_owned(), every);
        self
    }

    /// Works until `shutdown` resolves, then finishes or releases running jobs.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let me = Arc::new(self);
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut loops = vec![tokio::spawn(me.clone().schedule_loop(stop_rx.clone()))];
        for _ in 0..me.config.concurrency {
            loops.push(tokio::spawn(me.clone().claim_loop(stop_rx.clone())));
        }
        tracing::info!(worker = %me.id, kinds = ?me.handlers.keys().collect::<Vec<_>>(), "worker started");
        shutdown.await;
        tracing::info!(
            "worker stopping: no new jobs; running jobs get {:?}",
            me.config.shutdown_grace
        );
        let _ = stop_tx.send(true);
        for l in loops {
            let _ = l.await;
        }
        tracing::info!("worker stopped");
        Ok(())
    }

    /// Keeps one pending copy of every recurring job (the dedupe key makes this a no-op while
    /// one exists). A failure here (the database is down) is retried on the next tick: the
    /// worker starts, and keeps running, whatever state PostgreSQL is in.
    async fn schedule_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            let mut next = SCHEDULE_EVERY;
            for kind in self.recurring.keys() {
                if let Err(e) = self.schedule(kind, Duration::ZERO).await {
                    tracing::warn!(error = %e, kind, "could not schedule a recurring job");
                    next = Duration::from_secs(1);
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(next) => {}
                _ = stop.changed() => {}
            }
        }
    }

    async fn schedule(&self, kind: &str, delay: Duration) -> anyhow::Result<()> {
        let mut conn = self.app.db.write.acquire().await?;
        jobs::enqueue(&mut conn, recurring_job(kind, delay)).await?;
        Ok(())
    }

    /// A recurring job that failed for good is followed by its next run, a period later.
    async fn follow_up(&self, job: &JobRow) {
        if let Some(every) = self.recurring.get(&job.kind) {
            if let Err(e) = self.schedule(&job.kind, *every).await {
                tracing::warn!(error = %e, "could not schedule the next run; the scheduler will");
            }
        }
    }

    async fn claim_loop(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let kinds: Vec<String> = self.handlers.keys().cloned().collect();
        while !*stop.borrow() {
            self.stats.turned();
            match jobs::claim(&self.app.db.write, &self.id, self.config.lease, &kinds).await {
                Ok(Some(job)) => self.work(job, &mut stop).await,
                Ok(None) => {
                    tokio::select! {
                        _ = tokio::time::sleep(self.config.poll) => {}
                        _ = stop.changed() => {}
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "claiming a job failed");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = stop.changed() => {}
                    }
                }
            }
        }
    }

    async fn work(&self, job: JobRow, stop: &mut watch::Receiver<bool>) {
        let span =
            tracing::info_span!("job", id = %job.id, kind = %job.kind, attempt = job.attempts);
        self.work_in_span(job, stop).instrument(span).await
    }

    async fn work_in_span(&self, job: JobRow, stop: &mut watch::Receiver<bool>) {
        let pool = &self.app.db.write;
        if job.attempts > job.max_attempts {
            // It kept dying mid-run (lease expiries count as attempts): stop retrying.
            let _ = jobs::fail(pool, job.id, &self.id, "lease expired too many times", None).await;
            self.follow_up(&job).await;
            return;
        }
        let Some(handler) = self.handlers.get(&job.kind).cloned() else {
            return;
        };
        self.stats.running.fetch_add(1, Ordering::Relaxed);
        let outcome = self.run_handler(handler, &job, stop).await;
        self.stats.running.fetch_sub(1, Ordering::Relaxed);
        let Some(outcome) = outcome else {
            return;
        };
        let label = match &outcome {
            None => "released",
            Some(Ok(())) => "done",
            Some(Err(_)) if job.attempts < job.max_attempts => "retried",
            Some(Err(_)) => "failed",
        };
        ::metrics::counter!("till_worker_jobs_total", "kind" => job.kind.clone(), "outcome" => label)
            .increment(1);
        self.settle(&job, outcome).await;
    }

    /// Runs the handler while keeping the lease; `None` when the lease was lost (another worker
    /// has the job now), `Some(None)` when shutdown's grace ran out.
    async fn run_handler(
        &self,
        handler: Handler,
        job: &JobRow,
        stop: &mut watch::Receiver<bool>,
    ) -> Option<Option<JobResult>> {
        let pool = &self.app.db.write;
        let run = handler(self.app.clone(), job.clone());
        tokio::pin!(run);
        let mut beat = tokio::time::interval(self.config.lease / 3);
        beat.tick().await;
        let mut deadline: Option<tokio::time::Instant> = None;
        let outcome = loop {
            let grace = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = &mut run => break Some(r),
                _ = beat.tick() => {
                    if !matches!(jobs::heartbeat(pool, job.id, &self.id, self.config.lease).await, Ok(true)) {
                        tracing::warn!("lost the job's lease; abandoning this run");
                        return None;
                    }
                }
                _ = stop.changed(), if deadline.is_none() => {
                    deadline = Some(tokio::time::Instant::now() + self.config.shutdown_grace);
                }
                _ = grace => break None,
            }
        };
        Some(outcome)
    }

    /// Records how a run ended: released, done (and the next recurring copy), or failed.
    async fn settle(&self, job: &JobRow, outcome: Option<JobResult>) {
        let pool = &self.app.db.write;
        match outcome {
            None => {
                tracing::warn!("shutdown grace ran out; releasing the job");
                let _ = jobs::release(pool, job.id, &self.id).await;
            }
            Some(Ok(())) => {
                if let Err(e) = self.finish(job).await {
                    tracing::error!(error = %e, "could not record job completion");
                }
            }
            Some(Err(e)) => {
                let retry =
                    (job.attempts < job.max_attempts).then(|| self.config.backoff(job.attempts));
                tracing::warn!(error = %format!("{e:#}"), retry_in = ?retry, "job failed");
                let _ = jobs::fail(pool, job.id, &self.id, &format!("{e:#}"), retry).await;
                if retry.is_none() {
                    self.follow_up(job).await;
                }
            }
        }
    }

    async fn finish(&self, job: &JobRow) -> anyhow::Result<()> {
        let mut tx = self.app.db.write.begin().await?;
        if jobs::complete(&mut tx, job.id, &self.id).await? {
            if let Some(every) = self.recurring.get(&job.kind) {
                jobs::enqueue(&mut tx, recurring_job(&job.kind, *every)).await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}

fn recurring_job(kind: &str, delay: Duration) -> NewJob<'_> {
    NewJob {
        delay,
        dedupe_key: Some(kind),
        // A few quick retries; past them the next period's run takes over.
        max_attempts: 3,
        ..NewJob::new(kind, Value::Null)
    }
}
