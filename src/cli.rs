//! The command line: `wadash serve`, `wadash migrate`, `wadash token create`, ….

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret as _;

use crate::config::{Settings, redact_url};
use crate::domain::Role;
use crate::startup::Application;
use crate::storage;

#[derive(Debug, Parser)]
#[command(
    name = "wadash",
    version,
    about = "Operations console for WhatsApp traffic through Twilio"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the web server (creates and migrates the database first).
    Serve,
    /// Create the database if it is missing and apply migrations, then exit.
    Migrate,
    /// Manage dashboard users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Print the auth token that webhooks are validated with in simulator mode.
    WebhookToken,
    /// Send one message to every number in a file (CSV with a number column, or one number
    /// per line), throttled at the sender's rate, and follow it with a progress bar.
    Broadcast(BroadcastArgs),
    /// Schedule a reminder: one-off, or recurring with --every.
    Remind(RemindArgs),
    /// Run only the built-in Twilio simulator, as a stand-in Twilio for a `wadash serve` in
    /// live mode (TWILIO_API_BASE = its URL, TWILIO_ACCOUNT_SID = the SID it prints) or for
    /// measuring wadash without the simulator in its process.
    Simulator {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8081")]
        bind: String,
        /// The auth token it accepts and signs callbacks with.
        #[arg(long, env = "TWILIO_AUTH_TOKEN")]
        auth_token: String,
    },
    /// Import, export and change the consent of contacts.
    Contacts {
        #[command(subcommand)]
        command: ContactsCommand,
    },
    /// Drive inbound traffic (text, images, locations, STOP/START) at a running instance's
    /// /wa, signed like Twilio's.
    Simulate(SimulateArgs),
    /// Send one WhatsApp message (text, media or a template) and print its SID and status.
    Send {
        /// Recipient in E.164 form (+919900000000); the whatsapp: prefix is added.
        #[arg(long)]
        to: String,
        /// Text of the message.
        #[arg(long)]
        body: Option<String>,
        /// Public http(s) URL of a media file; repeat for up to 10.
        #[arg(long = "media")]
        media: Vec<String>,
        /// Sender (whatsapp:+14155238886) or Messaging Service SID (MG…); default: WADASH_DEFAULT_FROM.
        #[arg(long)]
        from: Option<String>,
        /// Approved template (HX…).
        #[arg(long)]
        content_sid: Option<String>,
        /// Template variables as a JSON object, e.g. '{"1":"Ada"}'.
        #[arg(long)]
        content_variables: Option<String>,
        /// Send free-form text even though the contact's 24-hour window is known to be closed.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, clap::Args)]
struct BroadcastArgs {
    /// File of recipients: CSV with a `number` column (other columns become template
    /// variables), or one number per line; `-` reads standard input.
    #[arg(long)]
    to_file: std::path::PathBuf,
    #[arg(long)]
    body: Option<String>,
    /// Public http(s) URL of a media file; repeat for up to 10.
    #[arg(long = "media")]
    media: Vec<String>,
    /// Approved template (HX…) for recipients outside their 24-hour window.
    #[arg(long)]
    content_sid: Option<String>,
    /// Template variables shared by every recipient, as a JSON object.
    #[arg(long)]
    content_variables: Option<String>,
    /// Sender (whatsapp:+… or MG…); default: the default sender.
    #[arg(long)]
    sender: Option<String>,
    #[arg(long)]
    name: Option<String>,
    /// Start later (RFC 3339).
    #[arg(long)]
    start_at: Option<String>,
    /// Queue it and exit without following it.
    #[arg(long)]
    no_wait: bool,
}

#[derive(Debug, clap::Args)]
struct RemindArgs {
    /// The number to remind (+…); or --tag.
    #[arg(long)]
    to: Option<String>,
    /// Everyone with this tag.
    #[arg(long)]
    tag: Option<String>,
    /// When: 2026-12-01T09:00:00+05:30, or a local time 2026-12-01T09:00 read in --timezone.
    #[arg(long)]
    at: String,
    #[arg(long)]
    body: Option<String>,
    #[arg(long = "media")]
    media: Vec<String>,
    #[arg(long)]
    content_sid: Option<String>,
    /// once (default), daily, weekly:mon,thu, monthly:15 or cron:"0 9 * * 1-5".
    #[arg(long)]
    every: Option<String>,
    /// IANA time zone of --at and of the recurrence (default UTC).
    #[arg(long)]
    timezone: Option<String>,
}

#[derive(Debug, Subcommand)]
enum ContactsCommand {
    /// Import contacts from a CSV file (columns number, profile_name, tags, consent): every
    /// line is checked first, and either all are imported or none.
    Import {
        /// The CSV file; `-` reads standard input.
        #[arg(long)]
        file: std::path::PathBuf,
    },
    /// Write every contact as CSV to standard output.
    Export,
    /// Opt a number out (nothing is sent to it until it opts in again).
    OptOut {
        #[arg(long)]
        number: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Opt a number in.
    OptIn {
        #[arg(long)]
        number: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// De-authorize a number: the business's own block, which the contact's keywords do not lift.
    Deauthorize {
        #[arg(long)]
        number: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Lift a de-authorization.
    Reauthorize {
        #[arg(long)]
        number: String,
        #[arg(long)]
        note: Option<String>,
    },
}

#[derive(Debug, clap::Args)]
struct SimulateArgs {
    /// Messages per second.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// How long to run: 60s, 5m, 500ms, or seconds.
    #[arg(long, default_value = "60s", value_parser = crate::simulate::parse_duration)]
    duration: std::time::Duration,
    /// Base URL of the instance, as Twilio calls it (default: WADASH_PUBLIC_URL, else
    /// http:// + WADASH_BIND).
    #[arg(long)]
    url: Option<String>,
    /// Auth token to sign with (default: the one the instance validates with — configured,
    /// or the simulator's token from the database).
    #[arg(long, env = "WADASH_SIMULATE_AUTH_TOKEN", hide_env_values = true)]
    auth_token: Option<String>,
    /// How many different customers write.
    #[arg(long, default_value_t = 50)]
    customers: u32,
    /// The business number they write to (default: WADASH_DEFAULT_FROM).
    #[arg(long)]
    to: Option<String>,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user. The password is read from standard input with --password-stdin
    /// (e.g. `printf '%s' "$PW" | wadash user add …`), else generated and printed once.
    Add {
        #[arg(long)]
        username: String,
        /// viewer, operator or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// Read the password from standard input (one line).
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an API token; the token is printed alone on the last line, once.
    Create {
        /// What the token is for (shown on the admin page).
        #[arg(long)]
        name: String,
        /// viewer, operator or admin.
        #[arg(long, value_parser = parse_role)]
        role: Role,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("{s:?} is not a role; use viewer, operator or admin"))
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wadash: configuration error: {e:#}");
            return ExitCode::from(2);
        }
    };
    crate::telemetry::init(settings.log_format);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wadash: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wadash: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            tracing::info!(database = %redact_url(settings.database.url.expose_secret()), "starting wadash {}", env!("CARGO_PKG_VERSION"));
            // Handlers first: a SIGTERM while the database is prepared still stops cleanly.
            let stop = crate::startup::wait_for_signal();
            let app = Application::build(settings).await?;
            app.run_until(stop).await
        }
        Command::Contacts { command } => contacts(command, settings).await,
        Command::Simulator { bind, auth_token } => {
            let sim = crate::twilio::simulator::Simulator::start_on(
                &bind,
                secrecy::SecretString::from(auth_token),
                settings.simulator,
            )?;
            println!("TWILIO_API_BASE={}", sim.url());
            println!("TWILIO_ACCOUNT_SID={}", sim.account_sid());
            std::io::stdout().flush()?;
            crate::startup::wait_for_signal().await;
            sim.stop().await;
            Ok(())
        }
        Command::Broadcast(args) => broadcast(args, settings).await,
        Command::Remind(args) => remind(args, settings).await,
        Command::Migrate => {
            crate::database::prepare(&settings.database).await?;
            println!(
                "database {} is up to date",
                redact_url(settings.database.url.expose_secret())
            );
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Create { name, role },
        } => {
            let name = name.trim();
            anyhow::ensure!(!name.is_empty(), "--name must not be empty");
            let pool = crate::database::prepare(&settings.database).await?;
            let (id, token) = storage::tokens::create(&pool, name, role)
                .await
                .context("creating the token")?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "created API token #{id} {name:?} with role {role}; it is shown only now:"
            )?;
            writeln!(out, "{token}")?;
            Ok(())
        }
        Command::Send {
            to,
            body,
            media,
            from,
            content_sid,
            content_variables,
            force,
        } => {
            let request = crate::sending::SendRequest {
                to,
                body,
                media_urls: media,
                content_sid,
                content_variables,
                from,
            };
            let configured = crate::sending::default_sender(
                &settings.twilio.default_from,
                settings.twilio.messaging_service_sid.as_deref(),
            )
            .map_err(|e| anyhow::anyhow!("default_from: {e}"))?;
            let public_url = settings
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", settings.bind));
            let pool = crate::database::prepare(&settings.database).await?;
            let (_, effective) = crate::startup::resolve_credentials(&settings, &pool).await?;
            let Some(client) =
                crate::startup::twilio_client(&effective, &settings.twilio, &public_url)?
            else {
                anyhow::bail!(
                    "no Twilio credentials are configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET), or name a credentials file in WADASH_TWILIO_CREDENTIALS_FILE"
                );
            };
            crate::senders::register_configured(&pool, &configured).await?;
            let default = crate::sending::current_default(&pool, &configured).await?;
            let msg = crate::sending::prepare(&request, &default)?;
            let opts = crate::sending::SendOptions {
                force,
                pacing: settings.pacing,
                ..Default::default()
            };
            let prices = crate::pricing::book::PriceBook::new(pool.clone());
            let sent = crate::sending::send(&client, &pool, &prices, &msg, opts).await?;
            for warning in &sent.warnings {
                eprintln!("warning: {warning}");
            }
            println!("{} {}", sent.sid, sent.status);
            Ok(())
        }
        Command::Simulate(args) => simulate(args, settings).await,
        Command::User {
            command:
                UserCommand::Add {
                    username,
                    role,
                    password_stdin,
                },
        } => {
            let username = crate::accounts::normalize_username(&username)
                .map_err(|e| anyhow::anyhow!("--username: {e}"))?;
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("reading the password from standard input")?;
                (line.trim_end_matches(['\r', '\n']).to_owned(), false)
            } else {
                (crate::accounts::password::generate(), true)
            };
            crate::accounts::password::check_policy(&password)
                .map_err(|e| anyhow::anyhow!("password: {e}"))?;
            let pool = crate::database::prepare(&settings.database).await?;
            let phc = tokio::task::spawn_blocking(move || {
                let h = crate::accounts::password::hash(&password);
                (h, password)
            })
            .await?;
            let (phc, password) = phc;
            let created = storage::users::create(&pool, &username, &phc, role)
                .await
                .context("adding the user")?;
            anyhow::ensure!(created.is_some(), "the username {username} is taken");
            println!("added {username} with role {role}");
            if generated {
                println!("password (shown only now): {password}");
            }
            Ok(())
        }
        Command::WebhookToken => {
            anyhow::ensure!(
                settings.twilio.auth_token.is_none(),
                "TWILIO_AUTH_TOKEN is configured: webhooks are validated with it, not with a generated token"
            );
            let pool = crate::database::prepare(&settings.database).await?;
            let token = crate::twilio::webhook_keys::simulator_token(&pool).await?;
            println!("{}", token.expose_secret());
            Ok(())
        }
    }
}

async fn simulate(args: SimulateArgs, settings: Settings) -> anyhow::Result<()> {
    use secrecy::SecretString;

    let url = args
        .url
        .or_else(|| settings.public_url.clone())
        .unwrap_or_else(|| format!("http://{}", settings.bind));
    anyhow::ensure!(
        url.starts_with("http://") || url.starts_with("https://"),
        "--url must start with http:// or https://, got {url:?}"
    );
    let to = match args.to {
        Some(t) => crate::domain::WhatsAppAddress::parse(&t)
            .map_err(|e| anyhow::anyhow!("--to: {e}"))?
            .as_str()
            .to_owned(),
        None => settings.twilio.default_from.clone(),
    };
    let (token, account) = match args.auth_token.filter(|t| !t.trim().is_empty()) {
        Some(t) => (SecretString::from(t.trim().to_owned()), None),
        None => {
            let pool = crate::database::prepare(&settings.database).await.context(
                "reading the instance's auth token from its database (or pass --auth-token)",
            )?;
            let (_, effective) = crate::startup::resolve_credentials(&settings, &pool).await?;
            let token = match effective.webhook_tokens().into_iter().next() {
                Some(t) => t,
                None => crate::twilio::webhook_keys::simulator_token(&pool).await?,
            };
            (token, effective.set.account_sid.clone())
        }
    };
    let account_sid = account.unwrap_or_else(|| crate::twilio::simulator::account_sid_for(&token));
    let plan = crate::simulate::Plan {
        url: url.trim_end_matches('/').to_owned(),
        token,
        account_sid,
        to,
        rate: args.rate,
        duration: args.duration,
        customers: args.customers.max(1),
        concurrency: 64,
    };
    eprintln!(
        "sending {} inbound messages to {}/wa at {}/s from {} customers",
        plan.total(),
        plan.url,
        plan.rate,
        plan.customers
    );
    let bar = crate::progress::ProgressBar::new("messages");
    let report = crate::simulate::run(&plan, &bar).await?;
    let kinds: Vec<String> = report
        .by_kind
        .iter()
        .map(|(k, n)| format!("{n} {}", k.label()))
        .collect();
    println!(
        "sent {} in {:.1} s ({:.1}/s): {}; accepted {}, p50 {:.1} ms, p99 {:.1} ms",
        report.sent,
        report.elapsed.as_secs_f64(),
        report.sent as f64 / report.elapsed.as_secs_f64().max(1e-3),
        kinds.join(", "),
        report.accepted,
        report.p50.as_secs_f64() * 1e3,
        report.p99.as_secs_f64() * 1e3,
    );
    if report.ok() {
        return Ok(());
    }
    let mut problems = Vec::new();
    for (status, n) in &report.refused {
        let why = match status {
            403 => {
                " (signature refused: the token is not the one the instance validates with, or --url is not its public URL)"
            }
            503 => " (the instance's database is unavailable)",
            _ => "",
        };
        problems.push(format!("{n} answered HTTP {status}{why}"));
    }
    if report.failed > 0 {
        problems.push(format!(
            "{} got no answer (is the instance running at {}?)",
            report.failed, plan.url
        ));
    }
    anyhow::bail!("{}", problems.join("; "))
}

async fn contacts(command: ContactsCommand, settings: Settings) -> anyhow::Result<()> {
    use crate::contacts::{Action, Actor};
    use crate::domain::consent::ConsentSource;
    let pool = crate::database::prepare(&settings.database).await?;
    let actor = format!(
        "cli ({})",
        std::env::var("USER").unwrap_or_else(|_| "unknown user".into())
    );
    let (action, number, note) = match command {
        ContactsCommand::Import { file } => {
            let bytes = if file.as_os_str() == "-" {
                let mut buf = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)?;
                buf
            } else {
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?
            };
            let report = match crate::contacts::csv_io::parse(&bytes) {
                Ok(lines) => crate::contacts::csv_io::import(&pool, &lines, &actor).await?,
                Err(errors) => crate::contacts::csv_io::ImportReport {
                    errors,
                    ..Default::default()
                },
            };
            if !report.errors.is_empty() {
                for e in &report.errors {
                    eprintln!("line {}: {}", e.line, e.message);
                }
                anyhow::bail!(
                    "nothing was imported: {} line(s) need fixing",
                    report.errors.len()
                );
            }
            println!(
                "imported {} contacts ({} new, {} updated)",
                report.imported, report.created, report.updated
            );
            return Ok(());
        }
        ContactsCommand::Export => {
            use futures_util::TryStreamExt as _;
            let mut chunks = std::pin::pin!(crate::contacts::csv_io::export_stream(pool.clone()));
            while let Some(chunk) = chunks.try_next().await? {
                std::io::stdout().lock().write_all(&chunk)?;
            }
            return Ok(());
        }
        ContactsCommand::OptOut { number, note } => (Action::OptOut, number, note),
        ContactsCommand::OptIn { number, note } => (Action::OptIn, number, note),
        ContactsCommand::Deauthorize { number, note } => (Action::Deauthorize, number, note),
        ContactsCommand::Reauthorize { number, note } => (Action::Reauthorize, number, note),
    };
    let number = crate::contacts::parse_number(&number)?;
    let c = crate::contacts::act(
        &pool,
        &number,
        action,
        Actor {
            source: ConsentSource::Cli,
            name: &actor,
            note: note.as_deref(),
        },
    )
    .await?;
    let consent = if c.is_deauthorized() {
        "deauthorized"
    } else {
        c.consent.as_str()
    };
    println!("{} {consent}", c.number);
    Ok(())
}

async fn broadcast(args: BroadcastArgs, settings: Settings) -> anyhow::Result<()> {
    use crate::broadcasts::{Audience, BroadcastRequest, audience};
    let text = if args.to_file.as_os_str() == "-" {
        let mut buf = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf)?;
        buf
    } else {
        std::fs::read_to_string(&args.to_file)
            .with_context(|| format!("reading {}", args.to_file.display()))?
    };
    let listed = audience::parse_pasted(&text).map_err(|e| anyhow::anyhow!(e))?;
    let content_variables = match &args.content_variables {
        None => None,
        Some(v) => Some(
            serde_json::from_str::<serde_json::Value>(v)
                .context("--content-variables must be a JSON object")?,
        ),
    };
    let start_at = match &args.start_at {
        None => None,
        Some(t) => Some(
            chrono::DateTime::parse_from_rfc3339(t)
                .context("--start-at must be an RFC 3339 time")?
                .with_timezone(&chrono::Utc),
        ),
    };
    let pool = crate::database::prepare(&settings.database).await?;
    let configured = crate::sending::default_sender(
        &settings.twilio.default_from,
        settings.twilio.messaging_service_sid.as_deref(),
    )
    .map_err(|e| anyhow::anyhow!("default_from: {e}"))?;
    crate::senders::register_configured(&pool, &configured).await?;
    let req = BroadcastRequest {
        name: args.name,
        body: args.body,
        media: args.media,
        content_sid: args.content_sid,
        content_variables,
        sender: args.sender,
        start_at,
        audience: Audience::Listed(listed),
        created_by: format!(
            "cli ({})",
            std::env::var("USER").unwrap_or_else(|_| "unknown user".into())
        ),
        reminder_id: None,
        request_key: None,
        template_category: None,
    };
    let (row, preview) = crate::broadcasts::create(
        &pool,
        &configured,
        settings.broadcast_reserve,
        &req,
        chrono::Utc::now(),
    )
    .await
    .map_err(|e| match e {
        crate::broadcasts::BroadcastError::NoRecipients(excluded) => {
            for x in &excluded {
                eprintln!("left out {}: {}", x.number, x.reason);
            }
            anyhow::anyhow!("nobody is left to send to")
        }
        other => anyhow::anyhow!(other),
    })?;
    for x in &preview.excluded {
        eprintln!("left out {}: {}", x.number, x.reason);
    }
    eprintln!(
        "broadcast #{} queued: {} recipients from {} at {:.2} msg/s, about {:.0} s, estimated {} {}",
        row.id,
        preview.recipient_count,
        preview.sender,
        preview.mps,
        preview.estimated_seconds,
        preview.estimated_cost,
        preview.cost_currency
    );
    println!("{}", row.id);
    if args.no_wait {
        return Ok(());
    }
    // With live credentials this process sends too (alongside any running server: they share
    // the queue); without, a running `wadash serve` does the sending.
    let public_url = settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.bind));
    let (_, effective) = crate::startup::resolve_credentials(&settings, &pool).await?;
    let (stop, shutdown) = crate::jobs::Shutdown::new();
    let runner = match crate::startup::twilio_client(&effective, &settings.twilio, &public_url)? {
        Some(client) => Some(crate::jobs::broadcasts::start(
            crate::jobs::broadcasts::Runner::new(
                pool.clone(),
                client,
                crate::pricing::book::PriceBook::new(pool.clone()),
                settings.broadcasts,
            ),
            shutdown,
        )),
        None => {
            eprintln!(
                "no Twilio credentials here: waiting for a running `wadash serve` to send it"
            );
            None
        }
    };
    let bar = crate::progress::ProgressBar::new("sent");
    let started = std::time::Instant::now();
    let total = preview.recipient_count as u64;
    let outcome = loop {
        let counts = storage::broadcasts::counts(&pool, row.id).await?;
        let done = total.saturating_sub(counts.pending as u64);
        let ok = (counts.sent + counts.delivered + counts.read) as u64;
        bar.update(done, total, ok, started.elapsed());
        let status = storage::broadcasts::get(&pool, row.id)
            .await?
            .map(|b| b.status)
            .unwrap_or_default();
        if status == "completed" || status == "canceled" {
            break (status, counts);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    let _ = stop.send(true);
    if let Some(r) = runner {
        let _ = r.await;
    }
    let (status, c) = outcome;
    println!(
        "broadcast #{} {status}: {} sent, {} delivered, {} read, {} failed, {} undelivered, {} canceled",
        row.id, c.sent, c.delivered, c.read, c.failed, c.undelivered, c.canceled
    );
    anyhow::ensure!(
        c.failed == 0,
        "{} recipients failed (see the broadcast's page)",
        c.failed
    );
    Ok(())
}

async fn remind(args: RemindArgs, settings: Settings) -> anyhow::Result<()> {
    let pool = crate::database::prepare(&settings.database).await?;
    let input = crate::reminders::ReminderInput {
        to: args.to,
        tag: args.tag,
        body: args.body,
        media_url: (!args.media.is_empty()).then(|| serde_json::json!(args.media)),
        content_sid: args.content_sid,
        sender: None,
        at: Some(args.at),
        every: args.every,
        timezone: args.timezone,
        status: None,
    };
    let by = format!(
        "cli ({})",
        std::env::var("USER").unwrap_or_else(|_| "unknown user".into())
    );
    let new = crate::reminders::validate(&input, None, &by, chrono::Utc::now())
        .map_err(|e| anyhow::anyhow!(e))?;
    let row = storage::reminders::insert(&pool, &new).await?;
    println!(
        "reminder #{} {} ({}, {}), next at {}",
        row.id,
        row.status,
        row.recurrence,
        row.timezone,
        row.next_at
            .map(|t| t.to_rfc3339())
            .unwrap_or_else(|| "never".into())
    );
    Ok(())
}
