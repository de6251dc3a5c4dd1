//! The command line: `wadash serve`, `wadash migrate`, `wadash token create`, …: the clap
//! definitions and the dispatcher; each command's body is in a file of its own.

mod broadcast;
mod contacts;
mod doctor;
mod migrate;
mod remind;
mod send;
mod senders;
mod serve;
mod sim_sender;
mod simulate;
mod simulator;
mod templates;
mod token;
mod user;
mod webhook_token;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Settings;
use crate::domain::Role;

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
    /// Check this deployment as Twilio meets it: database, migrations, TLS to PostgreSQL,
    /// WADASH_PUBLIC_URL, a signed probe through the public URL (the proxy), Twilio's
    /// credentials, the senders' webhooks, the clock, the secret key, the admin password.
    /// One line per check (ok, warn or fail, with the fix); exit status 1 if any fails.
    /// Changes nothing and prints no secret.
    Doctor {
        /// Print a JSON document instead: {"ok", "counts", "checks": [{name, status, detail, fix}]}.
        #[arg(long)]
        json: bool,
    },
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
    /// /wa, signed like Twilio's; or take a WhatsApp sender of its built-in simulator offline
    /// (`simulate sender-offline`) and back (`simulate sender-online`).
    Simulate(SimulateArgs),
    /// List the WhatsApp senders with Twilio's view of them, or read Twilio's senders now.
    Senders {
        #[command(subcommand)]
        command: SendersCommand,
    },
    /// Send one WhatsApp message (text, media or a template) and print its SID and status.
    Send(SendArgs),
    /// List the WhatsApp templates wadash knows, or read Twilio's catalogue now.
    Templates {
        #[command(subcommand)]
        command: TemplatesCommand,
    },
}

#[derive(Debug, Subcommand)]
enum TemplatesCommand {
    /// Print the templates as the last sync found them: SID, status, category, language, name.
    List {
        /// Only those with this WhatsApp status (approved, pending, rejected, paused, …).
        #[arg(long)]
        status: Option<String>,
    },
    /// Read Twilio's whole template catalogue now (live credentials needed) and print what
    /// changed.
    Sync,
}

#[derive(Debug, clap::Args)]
struct SendArgs {
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
}

#[derive(Debug, clap::Args)]
struct BroadcastArgs {
    /// File of recipients: CSV with a `number` column (other columns become template
    /// variables), or one number per line; `-` reads standard input.
    #[arg(long)]
    to_file: std::path::PathBuf,
    #[command(flatten)]
    content: ContentArgs,
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

/// What a broadcast or a reminder sends: `--body`, `--media`, `--content-sid`.
#[derive(Debug, clap::Args)]
struct ContentArgs {
    #[arg(long)]
    body: Option<String>,
    /// Public http(s) URL of a media file; repeat for up to 10.
    #[arg(long = "media")]
    media: Vec<String>,
    /// Approved template (HX…) for recipients outside their 24-hour window.
    #[arg(long)]
    content_sid: Option<String>,
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
    #[command(flatten)]
    content: ContentArgs,
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

#[derive(Debug, Subcommand)]
enum SendersCommand {
    /// Print every sender: address, kind, wadash status, Twilio's status, quality rating,
    /// messaging limit, webhooks, and Twilio's offline reasons.
    List,
    /// Read Twilio's WhatsApp senders now (live credentials, or the built-in simulator of a
    /// `wadash serve` on this database) and print what changed; alerts as the job does.
    Sync,
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
struct SimulateArgs {
    #[command(subcommand)]
    sender: Option<SimulateCommand>,
    #[command(flatten)]
    traffic: TrafficArgs,
}

#[derive(Debug, Subcommand)]
enum SimulateCommand {
    /// Take a WhatsApp sender of the running instance's built-in Twilio simulator OFFLINE
    /// with a reason, as WhatsApp would; the instance's next sender sync sees it.
    SenderOffline {
        #[command(flatten)]
        target: SimSenderArgs,
        /// Twilio's error code for why.
        #[arg(long, default_value = "63112")]
        reason_code: String,
        /// Twilio's words for why.
        #[arg(
            long,
            default_value = "The WhatsApp Business Account of this sender was disabled by Meta"
        )]
        reason: String,
    },
    /// Bring a sender taken offline with `sender-offline` back online at the simulator.
    SenderOnline {
        #[command(flatten)]
        target: SimSenderArgs,
    },
}

/// Which simulated sender, and where the simulator is.
#[derive(Debug, clap::Args)]
struct SimSenderArgs {
    /// The sender: whatsapp:+E164 (or +E164).
    #[arg(long)]
    sender: String,
    /// The simulator's base URL (default: the one `wadash serve` recorded in the database).
    #[arg(long)]
    simulator_url: Option<String>,
    /// The simulator's auth token (default: the one the instance validates with).
    #[arg(long, env = "WADASH_SIMULATE_AUTH_TOKEN", hide_env_values = true)]
    auth_token: Option<String>,
}

#[derive(Debug, clap::Args)]
struct TrafficArgs {
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
    if let Command::Doctor { json } = cli.command {
        return runtime.block_on(doctor::run(json, settings));
    }
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
        Command::Serve => serve::run(settings).await,
        Command::Contacts { command } => contacts::run(command, settings).await,
        Command::Simulator { bind, auth_token } => {
            simulator::run(&bind, auth_token, settings).await
        }
        Command::Broadcast(args) => broadcast::run(args, settings).await,
        Command::Remind(args) => remind::run(args, settings).await,
        Command::Migrate => migrate::run(settings).await,
        Command::Doctor { .. } => unreachable!("doctor runs before"),
        Command::Token { command } => token::run(command, settings).await,
        Command::Send(args) => send::run(args, settings).await,
        Command::Templates { command } => templates::run(command, settings).await,
        Command::Simulate(SimulateArgs {
            sender: None,
            traffic,
        }) => simulate::run(traffic, settings).await,
        Command::Simulate(SimulateArgs {
            sender:
                Some(SimulateCommand::SenderOffline {
                    target,
                    reason_code,
                    reason,
                }),
            ..
        }) => sim_sender::run(target, Some((reason_code, reason)), settings).await,
        Command::Simulate(SimulateArgs {
            sender: Some(SimulateCommand::SenderOnline { target }),
            ..
        }) => sim_sender::run(target, None, settings).await,
        Command::Senders { command } => senders::run(command, settings).await,
        Command::User { command } => user::run(command, settings).await,
        Command::WebhookToken => webhook_token::run(settings).await,
    }
}

/// Who a change made from the command line is recorded as: `cli (<login name>)`.
fn actor() -> String {
    format!(
        "cli ({})",
        std::env::var("USER").unwrap_or_else(|_| "unknown user".into())
    )
}

/// The URL Twilio reaches the instance at: WADASH_PUBLIC_URL, else http:// + WADASH_BIND.
fn public_url(settings: &Settings) -> String {
    settings
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.bind))
}
