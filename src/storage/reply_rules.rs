//! Automatic-reply rules, edited by admins.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use super::{PgQueryAs, assignments, placeholders};

#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct RuleRow {
    pub id: i64,
    pub position: i32,
    pub name: String,
    pub kind: String,
    pub pattern: String,
    pub sender: Option<String>,
    pub reply_body: Option<String>,
    pub reply_media: Vec<String>,
    /// The bot the rule hands the message to, instead of a fixed reply.
    pub bot_id: Option<i64>,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Inbound messages this rule answered.
    pub hits: i64,
    pub last_hit_at: Option<DateTime<Utc>>,
}

const COLUMNS: &str = "id, position, name, kind, pattern, sender, reply_body, reply_media, \
    bot_id, enabled, created_at, updated_at, hits, last_hit_at";

/// A rule's settings as written.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRule {
    pub name: String,
    pub kind: String,
    pub pattern: String,
    pub sender: Option<String>,
    pub reply_body: Option<String>,
    pub reply_media: Vec<String>,
    pub bot_id: Option<i64>,
    pub enabled: bool,
}

/// The evaluation groups: text rules (keyword, regex, button) by position, then image echo,
/// then `any` (everything no earlier rule matched).
const GROUP: &str = "CASE kind WHEN 'image_echo' THEN 1 WHEN 'any' THEN 2 ELSE 0 END";

/// Every rule in evaluation order: keyword and regex rules by position, then image echo,
/// then `any`.
pub async fn all(pool: &PgPool) -> sqlx::Result<Vec<RuleRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reply_rules ORDER BY {GROUP}, position, id"
    )))
    .fetch_all(pool)
    .await
}

/// The enabled rules that apply to messages sent to `sender`, in evaluation order.
pub async fn for_sender(conn: &mut PgConnection, sender: &str) -> sqlx::Result<Vec<RuleRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reply_rules \
         WHERE enabled AND (sender IS NULL OR sender = $1) \
         ORDER BY {GROUP}, position, id"
    )))
    .bind(sender)
    .fetch_all(conn)
    .await
}

/// Counts one more inbound message answered by rule `id`, in the transaction that stores the
/// reply (call it last before the commit: the rule's row stays locked until then).
pub async fn record_hit(conn: &mut PgConnection, id: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE reply_rules SET hits = hits + 1, last_hit_at = now() WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn get(pool: &PgPool, id: i64) -> sqlx::Result<Option<RuleRow>> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reply_rules WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(pool)
    .await
}

/// The columns a [`NewRule`] sets, in the order [`bind_settings`] binds them.
const SETTINGS: [&str; 8] = [
    "name",
    "kind",
    "pattern",
    "sender",
    "reply_body",
    "reply_media",
    "bot_id",
    "enabled",
];

fn bind_settings<'q, O>(q: PgQueryAs<'q, O>, r: &'q NewRule) -> PgQueryAs<'q, O> {
    q.bind(&r.name)
        .bind(&r.kind)
        .bind(&r.pattern)
        .bind(&r.sender)
        .bind(&r.reply_body)
        .bind(&r.reply_media)
        .bind(r.bot_id)
        .bind(r.enabled)
}

/// Adds a rule after the existing ones.
pub async fn insert(pool: &PgPool, r: &NewRule) -> sqlx::Result<RuleRow> {
    let sql = format!(
        "INSERT INTO reply_rules (position, {}) \
         SELECT COALESCE(max(position), 0) + 10, {} FROM reply_rules RETURNING {COLUMNS}",
        SETTINGS.join(", "),
        placeholders(1, SETTINGS.len())
    );
    bind_settings(sqlx::query_as(sqlx::AssertSqlSafe(sql)), r)
        .fetch_one(pool)
        .await
}

/// Puts a deleted rule back at the position it had (undo): before the rule that followed it,
/// unless the rules were renumbered meanwhile, then after the one now at that position.
pub async fn insert_at(pool: &PgPool, r: &NewRule, position: i32) -> sqlx::Result<RuleRow> {
    let sql = format!(
        "INSERT INTO reply_rules (position, {}) VALUES ($1, {}) RETURNING {COLUMNS}",
        SETTINGS.join(", "),
        placeholders(2, SETTINGS.len())
    );
    bind_settings(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(position), r)
        .fetch_one(pool)
        .await
}

pub async fn update(pool: &PgPool, id: i64, r: &NewRule) -> sqlx::Result<Option<RuleRow>> {
    let sql = format!(
        "UPDATE reply_rules SET {}, updated_at = now() WHERE id = $1 RETURNING {COLUMNS}",
        assignments(&SETTINGS, 2)
    );
    bind_settings(sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(id), r)
        .fetch_optional(pool)
        .await
}

pub async fn delete(pool: &PgPool, id: i64) -> sqlx::Result<bool> {
    Ok(sqlx::query("DELETE FROM reply_rules WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await?
        .rows_affected()
        == 1)
}

/// Swaps a rule with its neighbour above (`up`) or below among rules of the same group
/// (text rules, image-echo rules, or `any` rules), renumbering the group 10, 20, 30, … so that
/// positions stay distinct. Returns false when there is no such neighbour.
pub async fn move_rule(pool: &PgPool, id: i64, up: bool) -> sqlx::Result<bool> {
    let mut tx = pool.begin().await?;
    let mut ids: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM reply_rules \
         WHERE {GROUP} = (SELECT {GROUP} FROM reply_rules WHERE id = $1) \
         ORDER BY position, id FOR UPDATE"
    )))
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    let Some(at) = ids.iter().position(|&i| i == id) else {
        return Ok(false);
    };
    let other = match up {
        true if at > 0 => at - 1,
        false if at + 1 < ids.len() => at + 1,
        _ => return Ok(false),
    };
    ids.swap(at, other);
    sqlx::query(
        "UPDATE reply_rules r SET position = t.ord * 10, updated_at = now() \
         FROM unnest($1::bigint[]) WITH ORDINALITY AS t(id, ord) \
         WHERE r.id = t.id AND r.position <> t.ord * 10",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}
