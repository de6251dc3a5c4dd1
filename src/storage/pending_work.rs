//! The work still to do that depends on a sender or a template: broadcasts still to send
//! (scheduled, running, paused or held) and reminders still to come (active or paused).

/// What the work is looked up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Through {
    /// The sender's address (`whatsapp:+…` or `MG…`).
    Sender,
    /// The template's content SID.
    Template,
}

impl Through {
    /// The column of `broadcasts` and `reminders` holding it (the same name in both).
    fn column(self) -> &'static str {
        match self {
            Through::Sender => "sender",
            Through::Template => "content_sid",
        }
    }
}

/// The broadcasts and the reminders, by id, whose sender or template (`through`) is `value`.
pub async fn using(
    conn: &mut sqlx::PgConnection,
    through: Through,
    value: &str,
) -> sqlx::Result<(Vec<i64>, Vec<i64>)> {
    let column = through.column();
    let broadcasts = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM broadcasts WHERE {column} = $1
            AND status IN ('scheduled', 'running', 'paused', 'held') ORDER BY id"
    )))
    .bind(value)
    .fetch_all(&mut *conn)
    .await?;
    let reminders = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM reminders WHERE {column} = $1
            AND status IN ('active', 'paused') ORDER BY id"
    )))
    .bind(value)
    .fetch_all(&mut *conn)
    .await?;
    Ok((broadcasts, reminders))
}
