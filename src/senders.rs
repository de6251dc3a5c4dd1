//! WhatsApp senders: what a valid sender is, and how people join the Twilio sandbox.

use crate::domain::{SenderStatus as Status, WhatsAppAddress};
use crate::storage::senders::{NewSender, SenderRow};

/// The Twilio WhatsApp sandbox's number.
pub const SANDBOX_NUMBER: &str = crate::domain::phone::SANDBOX_SENDER;

/// Twilio's default throughput for a WhatsApp sender, messages per second.
pub const DEFAULT_MPS: f64 = 80.0;
/// The sandbox allows one message every three seconds.
pub const SANDBOX_MPS: f64 = 1.0 / 3.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Sandbox,
    Number,
    MessagingService,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Sandbox => "sandbox",
            Kind::Number => "number",
            Kind::MessagingService => "messaging_service",
        }
    }
}

/// A sender as a person or program describes it, before validation.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderInput {
    /// `whatsapp:+…`, `+…` or a Messaging Service SID `MG…`.
    pub address: Option<String>,
    pub label: Option<String>,
    /// `active` (default), `pending` or `disabled`.
    pub status: Option<String>,
    pub join_code: Option<String>,
    pub mps: Option<f64>,
    pub is_default: Option<bool>,
}

/// Validates a new sender. The kind follows from the address: the sandbox's number, another
/// number, or a Messaging Service.
pub fn validate_new(input: &SenderInput) -> Result<NewSender, String> {
    let raw = input
        .address
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .ok_or("address is required: a WhatsApp number (+14155238886) or a Messaging Service SID (MG…)")?;
    let (address, kind) = parse_address(raw)?;
    finish(input, address, kind)
}

/// Validates changed settings for an existing sender: fields left out keep their values;
/// the address and kind never change.
pub fn validate_update(existing: &SenderRow, input: &SenderInput) -> Result<NewSender, String> {
    let input = SenderInput {
        address: input.address.clone(),
        label: input.label.clone().or_else(|| Some(existing.label.clone())),
        status: input
            .status
            .clone()
            .or_else(|| Some(existing.status.as_str().to_owned())),
        join_code: input
            .join_code
            .clone()
            .or_else(|| existing.join_code.clone()),
        mps: input.mps.or(Some(existing.mps)),
        is_default: input.is_default.or(Some(existing.is_default)),
    };
    let input = &input;
    if let Some(a) = input
        .address
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
    {
        let (address, _) = parse_address(a)?;
        if address != existing.address {
            return Err("a sender's address cannot change; add a new sender instead".into());
        }
    }
    let kind = match existing.kind.as_str() {
        "sandbox" => Kind::Sandbox,
        "messaging_service" => Kind::MessagingService,
        _ => Kind::Number,
    };
    finish(input, existing.address.clone(), kind)
}

fn parse_address(raw: &str) -> Result<(String, Kind), String> {
    if let Some(rest) = raw.strip_prefix("MG") {
        if rest.len() == 32 && rest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok((raw.to_owned(), Kind::MessagingService));
        }
        return Err(format!(
            "{raw:?} is not a Messaging Service SID (MG and 32 hexadecimal digits)"
        ));
    }
    let address = WhatsAppAddress::parse(raw)?.as_str().to_owned();
    let kind = if address == SANDBOX_NUMBER {
        Kind::Sandbox
    } else {
        Kind::Number
    };
    Ok((address, kind))
}

fn finish(input: &SenderInput, address: String, kind: Kind) -> Result<NewSender, String> {
    let status = match input.status.as_deref().map(str::trim) {
        None | Some("") => Status::Active,
        Some(s) => Status::parse(s)
            .ok_or_else(|| format!("status must be active, pending or disabled, got {s:?}"))?,
    };
    let mps = input.mps.unwrap_or(match kind {
        Kind::Sandbox => SANDBOX_MPS,
        _ => DEFAULT_MPS,
    });
    if !(mps > 0.0 && mps <= 1000.0) {
        return Err(format!(
            "mps must be above 0 and at most 1000 messages per second, got {mps}"
        ));
    }
    let is_default = input.is_default.unwrap_or(false);
    if is_default && status != Status::Active {
        return Err("only an active sender can be the default".into());
    }
    let join_code = input
        .join_code
        .as_deref()
        .map(|c| c.trim().trim_start_matches("join ").trim().to_lowercase())
        .filter(|c| !c.is_empty());
    if let Some(code) = &join_code {
        if kind != Kind::Sandbox {
            return Err("only the sandbox has a join code".into());
        }
        if !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(format!(
                "a join code is words joined by dashes (e.g. plenty-tiger), got {code:?}"
            ));
        }
    }
    let label = input.label.as_deref().unwrap_or("").trim().to_owned();
    if label.chars().count() > 100 {
        return Err("label is limited to 100 characters".into());
    }
    Ok(NewSender {
        address,
        kind: kind.as_str().to_owned(),
        label,
        status,
        join_code,
        mps,
        is_default,
    })
}

/// Registers the configured sender (`WADASH_DEFAULT_FROM` or `WADASH_MESSAGING_SERVICE_SID`)
/// so that it can be sent from; it becomes the default when no sender is. A sender an admin
/// already registered keeps its settings.
pub async fn register_configured(
    pool: &sqlx::PgPool,
    sender: &crate::twilio::client::Sender,
) -> sqlx::Result<()> {
    use crate::twilio::client::Sender;
    let address = match sender {
        Sender::From(a) => a.as_str().to_owned(),
        Sender::MessagingService(mg) => mg.clone(),
    };
    let kind = if address.starts_with("MG") {
        Kind::MessagingService
    } else if address == SANDBOX_NUMBER {
        Kind::Sandbox
    } else {
        Kind::Number
    };
    let new = NewSender {
        address,
        kind: kind.as_str().to_owned(),
        label: "configured".to_owned(),
        status: Status::Active,
        join_code: None,
        mps: if kind == Kind::Sandbox {
            SANDBOX_MPS
        } else {
            DEFAULT_MPS
        },
        is_default: true,
    };
    crate::storage::senders::seed(pool, &new).await
}

/// How people join the sandbox: the message to send and a deep link that opens WhatsApp
/// with it typed (what a QR code for onboarding encodes).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct JoinInstructions {
    pub message: String,
    pub number: String,
    pub link: String,
}

pub fn join_instructions(sender: &SenderRow) -> Option<JoinInstructions> {
    let code = sender.join_code.as_deref()?;
    let number = sender.address.strip_prefix("whatsapp:")?.to_owned();
    let message = format!("join {code}");
    let link = format!(
        "https://wa.me/{}?text={}",
        number.trim_start_matches('+'),
        message.replace(' ', "%20")
    );
    Some(JoinInstructions {
        message,
        number,
        link,
    })
}

/// The join link as a QR code (SVG), for posters and screens: scanning it opens WhatsApp
/// with the join message typed.
pub fn join_qr_svg(join: &JoinInstructions) -> Result<String, String> {
    let code = qrcode::QrCode::new(join.link.as_bytes()).map_err(|e| e.to_string())?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .dark_color(qrcode::render::svg::Color("#000000"))
        .light_color(qrcode::render::svg::Color("#ffffff"))
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(address: &str) -> SenderInput {
        SenderInput {
            address: Some(address.into()),
            ..Default::default()
        }
    }

    #[test]
    fn the_kind_follows_from_the_address() {
        let s = validate_new(&input("+14155238886")).unwrap();
        assert_eq!(
            (s.address.as_str(), s.kind.as_str()),
            (SANDBOX_NUMBER, "sandbox")
        );
        assert!((s.mps - SANDBOX_MPS).abs() < 1e-9);
        let s = validate_new(&input("whatsapp:+14155550100")).unwrap();
        assert_eq!(s.kind, "number");
        assert_eq!(s.mps, DEFAULT_MPS);
        let mg = format!("MG{}", "a1".repeat(16));
        assert_eq!(validate_new(&input(&mg)).unwrap().kind, "messaging_service");
        assert!(validate_new(&input("MG123")).is_err());
        assert!(validate_new(&input("14155550100")).is_err());
        assert!(validate_new(&SenderInput::default()).is_err());
    }

    #[test]
    fn settings_are_checked() {
        let mut i = input("+14155238886");
        i.join_code = Some("join Plenty-Tiger".into());
        assert_eq!(
            validate_new(&i).unwrap().join_code.as_deref(),
            Some("plenty-tiger")
        );
        i.join_code = Some("bad code!".into());
        assert!(validate_new(&i).is_err());
        let mut i = input("+14155550100");
        i.join_code = Some("abc".into());
        assert!(validate_new(&i).is_err(), "join code on a number");
        let mut i = input("+14155550100");
        i.mps = Some(0.0);
        assert!(validate_new(&i).is_err());
        i.mps = Some(400.0);
        assert_eq!(validate_new(&i).unwrap().mps, 400.0);
        i.status = Some("pending".into());
        i.is_default = Some(true);
        assert!(validate_new(&i).is_err(), "a pending default");
        i.status = Some("paused".into());
        i.is_default = None;
        assert!(validate_new(&i).is_err());
    }

    #[test]
    fn join_instructions_link_to_whatsapp_with_the_message_typed() {
        let row = SenderRow {
            id: 1,
            address: SANDBOX_NUMBER.into(),
            kind: "sandbox".into(),
            label: String::new(),
            status: Status::Active,
            join_code: Some("plenty-tiger".into()),
            mps: SANDBOX_MPS,
            is_default: true,
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            twilio: Default::default(),
        };
        let j = join_instructions(&row).unwrap();
        assert_eq!(j.message, "join plenty-tiger");
        assert_eq!(j.number, "+14155238886");
        assert_eq!(j.link, "https://wa.me/14155238886?text=join%20plenty-tiger");
        let svg = join_qr_svg(&j).unwrap();
        assert!(
            svg.starts_with("<?xml") && svg.contains("<svg") && svg.contains("<path"),
            "{svg}"
        );
        let no_code = SenderRow {
            join_code: None,
            ..row
        };
        assert_eq!(join_instructions(&no_code), None);
    }
}
