//! Plain-language explanations of the Twilio / WhatsApp error codes ops staff meet most.
//! Source: Twilio's error dictionary (https://www.twilio.com/docs/api/errors).

/// What a code means and what to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorInfo {
    pub code: i32,
    pub meaning: &'static str,
    pub action: &'static str,
}

const TABLE: &[ErrorInfo] = &[
    ErrorInfo {
        code: 21211,
        meaning: "The 'To' number is not a valid phone number.",
        action: "Check the number and write it in E.164 form (+ and country code).",
    },
    ErrorInfo {
        code: 21408,
        meaning: "Permission to send to this region has not been enabled.",
        action: "Enable the country in Twilio's geo permissions.",
    },
    ErrorInfo {
        code: 21610,
        meaning: "The recipient has replied STOP and is unsubscribed.",
        action: "Do not send until they opt in again (START).",
    },
    ErrorInfo {
        code: 21614,
        meaning: "The 'To' number is not a valid mobile number.",
        action: "Check the number; landlines cannot receive WhatsApp messages.",
    },
    ErrorInfo {
        code: 30003,
        meaning: "The handset is unreachable (off or out of coverage).",
        action: "Retry later.",
    },
    ErrorInfo {
        code: 30005,
        meaning: "The number is unknown or no longer exists.",
        action: "Confirm the number with the customer.",
    },
    ErrorInfo {
        code: 30006,
        meaning: "The number cannot receive this message (landline or unreachable carrier).",
        action: "Use another number for this customer.",
    },
    ErrorInfo {
        code: 30007,
        meaning: "The message was filtered as spam by the carrier or WhatsApp.",
        action: "Review the content and the sender's quality rating.",
    },
    ErrorInfo {
        code: 30008,
        meaning: "Unknown delivery error reported by the carrier or WhatsApp.",
        action: "Retry once; if it persists, contact Twilio support with the message SID.",
    },
    ErrorInfo {
        code: 63003,
        meaning: "The recipient is not a WhatsApp user.",
        action: "Reach this customer through another channel.",
    },
    ErrorInfo {
        code: 63007,
        meaning: "Twilio could not find a WhatsApp sender for the 'From' address.",
        action: "Check the sender number and that it is approved for WhatsApp.",
    },
    ErrorInfo {
        code: 63015,
        meaning: "The recipient has not joined the WhatsApp sandbox.",
        action: "Ask them to send 'join <code>' to the sandbox number.",
    },
    ErrorInfo {
        code: 63016,
        meaning: "Outside the 24-hour customer service window: free-form messages are not allowed.",
        action: "Send an approved template (ContentSid) instead.",
    },
    ErrorInfo {
        code: 63018,
        meaning: "Rate limit exceeded for this WhatsApp sender.",
        action: "Slow down; broadcasts are throttled to the sender's limit.",
    },
    ErrorInfo {
        code: 63024,
        meaning: "Invalid message recipient.",
        action: "Check the number.",
    },
    ErrorInfo {
        code: 63032,
        meaning: "The user's phone cannot receive this message type.",
        action: "Send plain text or ask the user to update WhatsApp.",
    },
    ErrorInfo {
        code: 63049,
        meaning: "Meta chose not to deliver this marketing message.",
        action: "Reduce marketing frequency to this user.",
    },
];

/// The explanation for a code, if wadash knows it.
pub fn lookup(code: i32) -> Option<&'static ErrorInfo> {
    TABLE.iter().find(|e| e.code == code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn knows_the_window_and_sandbox_codes() {
        assert!(lookup(63016).unwrap().meaning.contains("24-hour"));
        assert!(lookup(63015).unwrap().meaning.contains("sandbox"));
        assert!(lookup(1).is_none());
    }

    #[test]
    fn codes_are_unique() {
        let mut codes: Vec<i32> = TABLE.iter().map(|e| e.code).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), TABLE.len());
    }
}
