//! Consent: what a contact agreed to, the keywords that change it, and how an inbound message
//! moves it.
//!
//! Keywords are matched the way people type them: case, surrounding whitespace and
//! punctuation do not matter (`stop`, ` Stop! `, `STOP.`), but the keyword must be the whole
//! message (`please stop calling` is a conversation, not an opt-out).

/// What the contact said about receiving messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Consent {
    /// Never said anything either way.
    Unknown,
    OptedIn,
    OptedOut,
}

impl Consent {
    pub fn as_str(self) -> &'static str {
        match self {
            Consent::Unknown => "unknown",
            Consent::OptedIn => "opted_in",
            Consent::OptedOut => "opted_out",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "unknown" => Some(Self::Unknown),
            "opted_in" => Some(Self::OptedIn),
            "opted_out" => Some(Self::OptedOut),
            _ => None,
        }
    }
}

/// One entry of a contact's consent history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentChange {
    OptedIn,
    OptedOut,
    /// The business blocked the contact.
    Deauthorized,
    /// The business lifted its block.
    Reauthorized,
}

impl ConsentChange {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentChange::OptedIn => "opted_in",
            ConsentChange::OptedOut => "opted_out",
            ConsentChange::Deauthorized => "deauthorized",
            ConsentChange::Reauthorized => "reauthorized",
        }
    }
}

/// What made a consent change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentSource {
    /// `join <code>` sent to the Twilio sandbox.
    SandboxJoin,
    /// The contact's first message.
    FirstInbound,
    /// An opt-out or opt-in keyword.
    Keyword,
    /// An operator on the dashboard's web forms.
    Dashboard,
    Api,
    Import,
    Cli,
}

impl ConsentSource {
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentSource::SandboxJoin => "sandbox_join",
            ConsentSource::FirstInbound => "first_inbound",
            ConsentSource::Keyword => "keyword",
            ConsentSource::Dashboard => "dashboard",
            ConsentSource::Api => "api",
            ConsentSource::Import => "import",
            ConsentSource::Cli => "cli",
        }
    }
}

/// Which way a keyword moves consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeywordKind {
    OptOut,
    OptIn,
}

/// The configured opt-out and opt-in keywords, normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keywords {
    opt_out: Vec<String>,
    opt_in: Vec<String>,
}

/// Twilio's and WhatsApp's usual opt-out words.
pub const DEFAULT_OPT_OUT: &str = "STOP, UNSUBSCRIBE, CANCEL, END, QUIT, STOPALL";
pub const DEFAULT_OPT_IN: &str = "START, UNSTOP";

impl Default for Keywords {
    fn default() -> Self {
        Self::parse(DEFAULT_OPT_OUT, DEFAULT_OPT_IN).expect("the default keywords are valid")
    }
}

impl Keywords {
    /// Parses two comma-separated lists. A keyword may not be empty or in both lists.
    pub fn parse(opt_out: &str, opt_in: &str) -> Result<Self, String> {
        fn list(text: &str, what: &str) -> Result<Vec<String>, String> {
            let words: Vec<String> = text
                .split(',')
                .map(normalize)
                .filter(|w| !w.is_empty())
                .collect();
            if words.is_empty() {
                return Err(format!("the {what} keyword list is empty"));
            }
            Ok(words)
        }
        let opt_out = list(opt_out, "opt-out")?;
        let opt_in = list(opt_in, "opt-in")?;
        if let Some(both) = opt_out.iter().find(|w| opt_in.contains(w)) {
            return Err(format!("{both:?} is both an opt-out and an opt-in keyword"));
        }
        Ok(Self { opt_out, opt_in })
    }

    /// The keyword a message consists of, if any.
    pub fn classify(&self, body: &str) -> Option<KeywordKind> {
        let word = normalize(body);
        if word.is_empty() {
            None
        } else if self.opt_out.contains(&word) {
            Some(KeywordKind::OptOut)
        } else if self.opt_in.contains(&word) {
            Some(KeywordKind::OptIn)
        } else {
            None
        }
    }

    pub fn opt_out(&self) -> &[String] {
        &self.opt_out
    }

    pub fn opt_in(&self) -> &[String] {
        &self.opt_in
    }
}

/// Upper case, without surrounding whitespace or punctuation, inner whitespace collapsed to
/// one space.
pub fn normalize(text: &str) -> String {
    let trimmed = text.trim_matches(|c: char| c.is_whitespace() || is_punctuation(c));
    let mut out = String::with_capacity(trimmed.len());
    for word in trimmed.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(word.chars().flat_map(char::to_uppercase));
    }
    out
}

fn is_punctuation(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(
            c,
            '¡' | '¿' | '…' | '“' | '”' | '‘' | '’' | '«' | '»' | '。' | '！' | '？' | '।'
        )
}

/// The code of a Twilio sandbox `join <code>` message (lower case), if the message is one.
pub fn sandbox_join_code(body: &str) -> Option<String> {
    let norm = normalize(body);
    let code = norm.strip_prefix("JOIN ")?;
    let code = code.trim();
    (!code.is_empty()).then(|| code.to_lowercase())
}

/// What an inbound message does to consent: the change to record, if any.
///
/// - An opt-out keyword opts out, an opt-in keyword opts in (again);
/// - `join <code>` to the sandbox opts in;
/// - any other first message from a contact who never said anything opts in.
///
/// The business's own block (de-authorization) is separate and is not lifted here.
pub fn on_inbound(
    current: Consent,
    keyword: Option<KeywordKind>,
    sandbox_join: bool,
) -> Option<(ConsentChange, ConsentSource)> {
    match keyword {
        Some(KeywordKind::OptOut) => (current != Consent::OptedOut)
            .then_some((ConsentChange::OptedOut, ConsentSource::Keyword)),
        Some(KeywordKind::OptIn) => (current != Consent::OptedIn)
            .then_some((ConsentChange::OptedIn, ConsentSource::Keyword)),
        None if sandbox_join => (current != Consent::OptedIn)
            .then_some((ConsentChange::OptedIn, ConsentSource::SandboxJoin)),
        None => (current == Consent::Unknown)
            .then_some((ConsentChange::OptedIn, ConsentSource::FirstInbound)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keywords_ignore_case_whitespace_and_surrounding_punctuation() {
        let k = Keywords::default();
        for text in [
            "STOP",
            "stop",
            " Stop ",
            "STOP.",
            "stop!!",
            "\tSTOP\n",
            "¡Stop!",
            "\"stop\"",
            "Unsubscribe",
            "stopall",
            "quit?",
            "END",
            "cancel.",
        ] {
            assert_eq!(k.classify(text), Some(KeywordKind::OptOut), "{text:?}");
        }
        for text in ["START", "start", " Unstop! "] {
            assert_eq!(k.classify(text), Some(KeywordKind::OptIn), "{text:?}");
        }
        for text in [
            "",
            "   ",
            "!!!",
            "please stop",
            "stopping",
            "st op",
            "STOP STOP",
            "don't stop",
            "started",
            "hello",
        ] {
            assert_eq!(k.classify(text), None, "{text:?}");
        }
    }

    #[test]
    fn configured_lists_replace_the_defaults_and_may_hold_phrases() {
        let k = Keywords::parse("stop, baja,  NO MORE ", "start,alta").unwrap();
        assert_eq!(k.classify("BAJA"), Some(KeywordKind::OptOut));
        assert_eq!(k.classify("no   more!"), Some(KeywordKind::OptOut));
        assert_eq!(k.classify("Alta"), Some(KeywordKind::OptIn));
        assert_eq!(k.classify("unsubscribe"), None, "not configured");
        assert!(Keywords::parse("stop", "Stop").is_err(), "in both lists");
        assert!(Keywords::parse(" , ", "start").is_err(), "empty list");
    }

    #[test]
    fn non_ascii_keywords_match_case_insensitively() {
        let k = Keywords::parse("STOP, ARRÊT", "START").unwrap();
        assert_eq!(k.classify("arrêt"), Some(KeywordKind::OptOut));
        assert_eq!(k.classify("Arrêt."), Some(KeywordKind::OptOut));
    }

    #[test]
    fn sandbox_join_messages_are_recognised() {
        assert_eq!(
            sandbox_join_code("join  Plenty-Tiger"),
            Some("plenty-tiger".into())
        );
        assert_eq!(sandbox_join_code("JOIN abc."), Some("abc".into()));
        assert_eq!(sandbox_join_code("join"), None);
        assert_eq!(sandbox_join_code("joined the call"), None);
    }

    #[test]
    fn inbound_messages_move_consent() {
        use ConsentChange::*;
        use ConsentSource::*;
        let out = Some(KeywordKind::OptOut);
        let inn = Some(KeywordKind::OptIn);
        assert_eq!(
            on_inbound(Consent::Unknown, None, false),
            Some((OptedIn, FirstInbound))
        );
        assert_eq!(on_inbound(Consent::OptedIn, None, false), None);
        assert_eq!(
            on_inbound(Consent::OptedOut, None, false),
            None,
            "chatting after STOP does not opt back in"
        );
        assert_eq!(
            on_inbound(Consent::Unknown, out, false),
            Some((OptedOut, Keyword))
        );
        assert_eq!(
            on_inbound(Consent::OptedIn, out, false),
            Some((OptedOut, Keyword))
        );
        assert_eq!(on_inbound(Consent::OptedOut, out, false), None);
        assert_eq!(
            on_inbound(Consent::OptedOut, inn, false),
            Some((OptedIn, Keyword))
        );
        assert_eq!(on_inbound(Consent::OptedIn, inn, false), None);
        assert_eq!(
            on_inbound(Consent::OptedOut, None, true),
            Some((OptedIn, SandboxJoin))
        );
        assert_eq!(
            on_inbound(Consent::Unknown, None, true),
            Some((OptedIn, SandboxJoin))
        );
    }
}
