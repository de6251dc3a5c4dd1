//! The command line: `wadash serve`, `wadash migrate`, `wadash token create`, ….

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use secrecy::ExposeSecret as _;

use crate::auth::Role;
use crate::config::{Settings, redact_url};
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
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Print the auth token that webhooks are validated with in simulator mode.
    WebhookToken,
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
            let app = Application::build(settings).await?;
            app.run_until_stopped().await
        }
        Command::Migrate => {
            storage::database::prepare(&settings.database).await?;
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
            let pool = storage::database::prepare(&settings.database).await?;
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
        } => {
            let request = crate::sending::SendRequest {
                to,
                body,
                media_urls: media,
                content_sid,
                content_variables,
                from,
            };
            let default = crate::sending::default_sender(
                &settings.twilio.default_from,
                settings.twilio.messaging_service_sid.as_deref(),
            )
            .map_err(|e| anyhow::anyhow!("default_from: {e}"))?;
            let msg = crate::sending::prepare(&request, &default)?;
            let public_url = settings
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", settings.bind));
            let pool = storage::database::prepare(&settings.database).await?;
            let (_, effective) = crate::startup::resolve_credentials(&settings, &pool).await?;
            let Some(client) =
                crate::startup::twilio_client(&effective, &settings.twilio, &public_url)?
            else {
                anyhow::bail!(
                    "no Twilio credentials are configured: set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET), or name a credentials file in WADASH_TWILIO_CREDENTIALS_FILE"
                );
            };
            let sent = crate::sending::send(&client, &pool, &msg).await?;
            println!("{} {}", sent.sid, sent.status);
            Ok(())
        }
        Command::WebhookToken => {
            anyhow::ensure!(
                settings.twilio.auth_token.is_none(),
                "TWILIO_AUTH_TOKEN is configured: webhooks are validated with it, not with a generated token"
            );
            let pool = storage::database::prepare(&settings.database).await?;
            let token = crate::twilio::webhook_keys::simulator_token(&pool).await?;
            println!("{}", token.expose_secret());
            Ok(())
        }
    }
}
