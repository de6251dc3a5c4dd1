//! Building and running the application; used by `wadash serve` and by the tests.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::config::{RunnerSettings, Settings};
use crate::credentials::manager::Sources;
use crate::credentials::{CredentialManager, Effective};
use crate::ingest::Ingestor;
use crate::metrics::Metrics;
use crate::pricing::book::PriceBook;
use crate::routes;
use crate::state::AppState;
use crate::storage;
use crate::twilio::client::{RestCredentials, RetryPolicy, Sender, TwilioClient};
use crate::twilio::simulator::Simulator;
use crate::twilio::webhook_keys::{TokenOrigin, WebhookKeys, simulator_token};

/// Reads every credential source (environment, credentials file, credentials stored through
/// the API) as they are now. A credentials file that is named but unreadable is an error.
pub async fn resolve_credentials(
    settings: &Settings,
    pool: &PgPool,
) -> anyhow::Result<(Sources, Effective)> {
    let environment = settings
        .twilio
        .credentials
        .clone()
        .validated()
        .map_err(|e| anyhow::anyhow!("Twilio settings: {e}"))?;
    let sources = Sources {
        environment,
        file: settings.credentials.file.clone(),
        secret_key: settings.credentials.secret_key.clone(),
    };
    let effective = sources
        .read(pool, false)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok((sources, effective))
}

/// The configured default sender: the Messaging Service if one is set, else
/// WADASH_DEFAULT_FROM.
pub fn configured_sender(settings: &Settings) -> anyhow::Result<Sender> {
    crate::sending::default_sender(
        &settings.twilio.default_from,
        settings.twilio.messaging_service_sid.as_deref(),
    )
    .map_err(|e| anyhow::anyhow!("default_from: {e}"))
}

/// The REST client for live mode (`None` without credentials). Created messages get
/// `StatusCallback = <public URL>/sts`.
pub fn twilio_client(
    effective: &Effective,
    twilio: &crate::config::TwilioSettings,
    public_url: &str,
) -> anyhow::Result<Option<TwilioClient>> {
    let (Some(account), Some(creds)) = (&effective.set.account_sid, effective.rest_credentials())
    else {
        return Ok(None);
    };
    let client = TwilioClient::new(
        &twilio.api_base,
        account,
        creds,
        Some(format!("{public_url}/sts")),
        twilio.timeout,
        RetryPolicy::default(),
    )?;
    Ok(Some(client))
}

/// Starts the broadcast runner, which sends queued broadcasts through `twilio` until
/// `shutdown` (part of `wadash serve`; `wadash broadcast` runs one of its own).
pub fn start_broadcast_runner(
    pool: PgPool,
    twilio: TwilioClient,
    prices: PriceBook,
    settings: RunnerSettings,
    shutdown: CancellationToken,
) -> JoinHandle<()> {
    crate::jobs::broadcasts::start(
        crate::jobs::broadcasts::Runner::new(pool, twilio, prices, settings),
        shutdown,
    )
}

/// The Twilio client: the REST client with credentials, else one for a built-in simulator
/// started here (which signs its callbacks with the webhook key).
fn twilio_or_simulator(
    effective: &Effective,
    settings: &Settings,
    public_url: &str,
    webhook_keys: &WebhookKeys,
) -> anyhow::Result<(TwilioClient, Option<Simulator>)> {
    Ok(
        match twilio_client(effective, &settings.twilio, public_url)? {
            Some(client) => (client, None),
            None => {
                let token = webhook_keys.primary();
                // The simulated recipients answer (tap buttons) at wadash's own `/wa`.
                let sim_settings = crate::config::SimulatorSettings {
                    inbound_url: Some(format!("{public_url}/wa")),
                    ..settings.simulator.clone()
                };
                let sim = Simulator::start(token.clone(), sim_settings)?;
                let client = TwilioClient::new(
                    sim.url(),
                    sim.account_sid(),
                    RestCredentials {
                        username: sim.account_sid().to_owned(),
                        secret: token,
                    },
                    Some(format!("{public_url}/sts")),
                    settings.twilio.timeout,
                    RetryPolicy::default(),
                )?;
                tracing::info!(simulator = %sim.url(), "messages go to the built-in Twilio simulator, which answers like Twilio and sends signed status callbacks to /sts");
                (client, Some(sim))
            }
        },
    )
}

/// Starts the background work of `wadash serve`: live updates, the alerts' snapshot, the
/// credentials' reload and the jobs, all stopping on `shutdown`.
fn start_jobs(
    state: &AppState,
    settings: &Settings,
    shutdown: &CancellationToken,
) -> anyhow::Result<Vec<JoinHandle<()>>> {
    let mut jobs = vec![
        state.live.start(settings.live_poll),
        state.open_alerts.start(
            state.pool.clone(),
            std::time::Duration::from_secs(5),
            shutdown.clone(),
        ),
        crate::jobs::rollup::start(state.pool.clone(), shutdown.clone()),
        state
            .credentials
            .start(settings.credentials.poll, shutdown.clone()),
    ];
    jobs.push(start_broadcast_runner(
        state.pool.clone(),
        state.twilio.clone(),
        state.prices.clone(),
        settings.broadcasts,
        shutdown.clone(),
    ));
    jobs.extend(crate::jobs::balance::start(
        crate::jobs::balance::BalancePoller {
            pool: state.pool.clone(),
            twilio: state.twilio.clone(),
            interval: settings.balance_poll,
            levels: settings.credit,
            channels: state.alert_channels.clone(),
        },
        shutdown.clone(),
    ));
    jobs.extend(crate::alerts::evaluate::start(
        crate::alerts::evaluate::Evaluator {
            pool: state.pool.clone(),
            channels: state.alert_channels.clone(),
        },
        settings.alert_evaluate,
        shutdown.clone(),
    ));
    jobs.push(crate::alerts::delivery::start(
        crate::alerts::delivery::Deliverer {
            pool: state.pool.clone(),
            channels: state.alert_channels.clone(),
            http: crate::outbound::Client::new(
                crate::outbound::AllowList::new(&settings.outbound_allow_hosts),
                std::time::Duration::from_secs(10),
            )?,
            twilio: state.twilio.clone(),
            sender: state.default_sender.clone(),
            prices: state.prices.clone(),
            pacing: settings.pacing,
        },
        shutdown.clone(),
    ));
    jobs.push(crate::jobs::reminders::start(
        crate::jobs::reminders::ReminderRunner {
            pool: state.pool.clone(),
            configured_sender: state.default_sender.clone(),
            max_late: settings.reminder_max_late,
        },
        shutdown.clone(),
    ));
    jobs.extend(crate::jobs::prices::start(
        crate::jobs::prices::PriceFetcher {
            pool: state.pool.clone(),
            twilio: state.twilio.clone(),
            settings: settings.price_fetch,
        },
        shutdown.clone(),
    ));
    jobs.extend(crate::jobs::templates::start(
        state.pool.clone(),
        state.content.clone(),
        state.alert_channels.clone(),
        settings.template_sync,
        shutdown.clone(),
    ));
    jobs.extend(crate::jobs::senders::start(
        state.pool.clone(),
        state.messaging.clone(),
        state.alert_channels.clone(),
        crate::onboarding::sync::SyncContext::of_instance(&state.public_url),
        settings.sender_sync,
        shutdown.clone(),
    ));
    jobs.extend(crate::jobs::reconcile::start(
        crate::jobs::reconcile::Reconciler {
            pool: state.pool.clone(),
            twilio: state.twilio.clone(),
            settings: settings.reconcile,
            metrics: state.metrics.clone(),
        },
        shutdown.clone(),
    ));
    Ok(jobs)
}

/// A bound, ready-to-run server.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
    ingest: JoinHandle<()>,
    simulator: Option<Simulator>,
    jobs: Vec<JoinHandle<()>>,
    /// Stops the jobs when told to, or when the application is dropped.
    stop_jobs: DropGuard,
}

impl Application {
    /// Prepares the database (create if missing, migrate), binds the listener and builds the
    /// server. Binding port 0 picks a free port (tests); `port()` tells which.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let pool = crate::database::prepare(&settings.database).await?;
        Self::build_with_pool(settings, pool).await
    }

    /// Like [`build`](Self::build) with an existing, migrated pool.
    pub async fn build_with_pool(settings: Settings, pool: PgPool) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.bind)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", settings.bind))?;
        let addr = listener.local_addr()?;
        let public_url: Arc<str> = settings
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"))
            .into();
        if let Some(host) = crate::domain::probe::plain_http_outside_loopback(&public_url) {
            tracing::warn!(
                public_url = %public_url,
                "WADASH_PUBLIC_URL is plain http on {host}, which is not loopback: Twilio's signed callbacks and dashboard passwords would cross the network unencrypted. Put wadash behind a TLS-terminating proxy and set WADASH_PUBLIC_URL to its https:// URL (`wadash doctor` fails this)"
            );
        }

        let (sources, effective) = resolve_credentials(&settings, &pool).await?;
        let webhook_keys = match effective.webhook_tokens() {
            tokens if !tokens.is_empty() => WebhookKeys::new(tokens, TokenOrigin::Configured),
            _ => WebhookKeys::new(
                vec![simulator_token(&pool).await?],
                TokenOrigin::GeneratedForSimulator,
            ),
        };
        let simulator_mode = !effective.is_live();
        let metrics = Arc::new(Metrics::default());
        let (ingestor, ingest) = Ingestor::start(pool.clone(), settings.ingest, metrics.clone());
        let (twilio, simulator) =
            twilio_or_simulator(&effective, &settings, &public_url, &webhook_keys)?;
        if let Some(sim) = &simulator {
            // Where `wadash simulate sender-offline` finds this instance's simulator.
            storage::instance_settings::put(&pool, crate::twilio::simulator::URL_KEY, sim.url())
                .await?;
        }
        let default_sender = configured_sender(&settings)?;
        crate::senders::register_configured(&pool, &default_sender).await?;
        if storage::prices::seed_if_empty(&pool, &crate::pricing::default_table()).await? {
            tracing::info!(
                "the price table was empty: seeded it with data/prices-default.csv, whose Meta rows are placeholders; upload the current rate card (PUT /api/v1/prices)"
            );
        }
        let credentials = CredentialManager::new(
            sources,
            effective.clone(),
            pool.clone(),
            metrics.clone(),
            twilio.clone(),
            webhook_keys.clone(),
        );
        let shutdown = CancellationToken::new();
        let stop_jobs = shutdown.clone().drop_guard();
        let live =
            crate::live::LiveHub::new(pool.clone(), shutdown.clone(), crate::live::hub::CAPACITY)
                .await?;
        // The simulator serves the Content API on its own port, beside its 2010 API.
        let content = twilio.content(match &simulator {
            Some(sim) => sim.url(),
            None => &settings.twilio.content_base,
        })?;
        let messaging = twilio.messaging(match &simulator {
            Some(sim) => sim.url(),
            None => &settings.twilio.messaging_base,
        })?;
        let state = AppState {
            content,
            messaging,
            prices: PriceBook::new(pool.clone()),
            live,
            credentials,
            pool: pool.clone(),
            ingestor,
            webhook_limits: settings.webhooks,
            webhook_bodies: crate::limits::Slots::new(
                settings.webhooks.max_bodies,
                settings.webhooks.max_bodies_per_peer,
            ),
            metrics,
            webhook_keys,
            public_url,
            simulator_mode,
            twilio,
            default_sender,
            replies: Arc::new(settings.replies.clone()),
            credit: settings.credit,
            broadcast_reserve: settings.broadcast_reserve,
            pacing: settings.pacing,
            balance: Arc::default(),
            reply_patterns: Arc::default(),
            alert_channels: crate::alerts::channels::ChannelStore::with_allowed_hosts(
                pool.clone(),
                settings.alert_channels.clone(),
                settings.credentials.secret_key.clone(),
                crate::outbound::AllowList::new(&settings.outbound_allow_hosts),
            ),
            open_alerts: Default::default(),
            template_sync: settings.template_sync,
        };

        if simulator_mode {
            tracing::warn!(
                "SIMULATOR MODE: no Twilio credentials (TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN or an API key) are configured; nothing reaches Twilio"
            );
        } else {
            tracing::info!(account = ?effective.set.account_sid, auth_token = ?effective.token_source, api_key = ?effective.api_key_source, "live mode: talking to Twilio at {}", settings.twilio.api_base);
        }
        match state.webhook_keys.origin() {
            TokenOrigin::Configured => tracing::info!(
                "webhook signatures are checked against the account's auth token (and the secondary token if set)"
            ),
            TokenOrigin::GeneratedForSimulator => tracing::info!(
                "webhook signatures are checked against this instance's generated auth token (`wadash webhook-token` shows it)"
            ),
        }
        tracing::info!(%addr, public_url = %state.public_url, "listening; point Twilio at {0}/wa and {0}/sts", state.public_url);

        crate::accounts::bootstrap::announce_first_admin(
            &state.pool,
            settings.admin_password.as_ref(),
        )
        .await?;

        // The banner's snapshot is current before the first page and before every `alerts`
        // event reaches this instance's browsers.
        state.open_alerts.refresh(&state.pool).await?;
        state.live.before_sending("alerts", {
            let (open, pool) = (state.open_alerts.clone(), state.pool.clone());
            Arc::new(move || {
                let (open, pool) = (open.clone(), pool.clone());
                Box::pin(async move {
                    if let Err(e) = open.refresh(&pool).await {
                        tracing::warn!(error = %e, "open alerts: refresh failed; the timer retries");
                    }
                })
            })
        });
        let jobs = start_jobs(&state, &settings, &shutdown)?;

        let data = web::Data::new(state.clone());
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .wrap(actix_web::middleware::from_fn(
                    crate::routes::pages::fallback::styled,
                ))
                .wrap(actix_web::middleware::from_fn(
                    crate::routes::pages::error::with_frame,
                ))
                .wrap(crate::routes::security_headers())
                .wrap(actix_web::middleware::from_fn(
                    crate::request_log::log_request,
                ))
                .configure(routes::configure)
        })
        .listen(listener)?
        // Signals are handled in `run_until_stopped`, which ends live streams before the
        // server waits for open connections.
        .disable_signals()
        // A client that closes its side of the connection is gone: without this, an `/events`
        // stream whose browser left stays open (and counted) until a keep-alive write fails.
        .h1_allow_half_closed(false)
        .shutdown_timeout(settings.shutdown_timeout.as_secs().max(1));
        if let Some(w) = settings.workers {
            server = server.workers(w);
        }
        Ok(Self {
            port: addr.port(),
            server: server.run(),
            state,
            ingest,
            simulator,
            jobs,
            stop_jobs,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGINT/SIGTERM (or a stop through the server handle), then lets in-flight
    /// requests finish and commits everything already queued before returning.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(wait_for_signal()).await
    }

    /// Like [`run_until_stopped`](Self::run_until_stopped), stopping when `stop` resolves
    /// (`wadash serve` installs its signal handlers before building, so that a signal during
    /// start-up is not lost).
    pub async fn run_until(
        self,
        stop: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        let Self {
            server,
            state,
            ingest,
            simulator,
            jobs,
            stop_jobs,
            ..
        } = self;
        let handle = server.handle();
        let mut server = std::pin::pin!(server);
        tokio::select! {
            r = &mut server => r?,
            _ = stop => {
                tracing::info!("stopping: finishing requests in flight, ending live streams");
                stop_jobs.token().cancel();
                // The stop command is carried out by the server future, so it must keep being
                // polled while the command waits.
                let stopping = tokio::spawn(async move { handle.stop(true).await });
                server.await?;
                let _ = stopping.await;
            }
        }
        drop(stop_jobs);
        for job in jobs {
            let _ = job.await;
        }
        if let Some(sim) = simulator {
            sim.stop().await;
        }
        let pool = state.pool.clone();
        drop(state);
        ingest.await?;
        pool.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is called, not when
/// the future is first polled.
pub fn wait_for_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            let (Ok(mut term), Ok(mut int)) = (term, int) else {
                return std::future::pending().await;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
