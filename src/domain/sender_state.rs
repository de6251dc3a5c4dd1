//! A WhatsApp sender's state in wadash (the `senders.status` column): whether messages may be
//! sent from it.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SenderStatus {
    Active,
    /// Waiting for Meta's approval: nothing can be sent from it yet.
    Pending,
    /// De-authorized by the business: kept for its history, never sent from.
    Disabled,
}

impl SenderStatus {
    pub const ALL: [SenderStatus; 3] = [Self::Active, Self::Pending, Self::Disabled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Pending => "pending",
            Self::Disabled => "disabled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for SenderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reading the `status` column.
impl TryFrom<String> for SenderStatus {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s).ok_or_else(|| format!("{s:?} is not a sender status"))
    }
}

#[cfg(test)]
mod tests {
    use super::SenderStatus;

    #[test]
    fn every_status_reads_back_from_its_text_and_nothing_else_does() {
        for s in SenderStatus::ALL {
            assert_eq!(SenderStatus::try_from(s.as_str().to_owned()), Ok(s));
        }
        assert!(SenderStatus::try_from("Active".to_owned()).is_err());
        assert!(SenderStatus::try_from("paused".to_owned()).is_err());
    }
}
