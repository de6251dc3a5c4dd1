//! The template picker of the forms that compose a message (send, broadcast): every template
//! in the catalogue with its WhatsApp status and category, offered as the content SID field's
//! suggestions (a `<datalist>`: typing a SID by hand still works, without JavaScript too).

use crate::routes::pages::PageError;
use crate::state::AppState;
use crate::storage::templates::Filter;

/// Most templates offered (WhatsApp accounts hold a few hundred at most).
const MOST: i64 = 500;

#[derive(Debug, Clone)]
pub struct TemplateChoice {
    pub sid: String,
    /// `order_update · approved · utility · en`
    pub label: String,
}

pub async fn load(state: &AppState) -> Result<Vec<TemplateChoice>, PageError> {
    let (items, _) = crate::templates::page(&state.pool, &Filter::default(), None, MOST).await?;
    Ok(items
        .into_iter()
        .map(|t| {
            let mut label = format!("{} · {}", t.name, t.whatsapp.status);
            if let Some(c) = &t.whatsapp.category {
                label.push_str(&format!(" · {c}"));
            }
            label.push_str(&format!(" · {}", t.language));
            TemplateChoice { sid: t.sid, label }
        })
        .collect())
}
