//! Schema compatibility between versions: may this binary run on a database that a newer
//! wadash has already migrated?
//!
//! During a rolling upgrade the first new instance migrates the shared database while old
//! instances keep serving, and an old instance that restarts (a crash, a host reboot) meets
//! migrations it does not know. Migrations are written expand/contract:
//!
//! - an **expand** migration only adds (tables, nullable or defaulted columns, indexes,
//!   widened checks); the previous version keeps working on it, so an old binary starts with
//!   a warning;
//! - a **contract** migration removes or narrows something an older version may still use.
//!   Its file name says so (`<version>_contract_<what>.sql`), and it ships one release after
//!   the code stopped using what it removes. An old binary refuses to start on a database that
//!   has one it does not know, naming it, rather than fail later on a missing column.
//!
//! A unit test below checks that every migration since this rule (after
//! [`RULE_SINCE`]) which drops, renames or retypes something is marked as a contract.

use std::collections::BTreeSet;

/// The last migration written before the expand/contract rule; later ones are checked.
pub const RULE_SINCE: i64 = 20261206000030;

/// The description prefix sqlx derives from a `…_contract_<what>.sql` file name.
pub const CONTRACT_PREFIX: &str = "contract ";

/// An applied migration, as `_sqlx_migrations` records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub version: i64,
    pub description: String,
}

/// What the applied migrations mean for this binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compat {
    /// Every applied migration is one this binary carries (some may still be pending).
    Known,
    /// A newer wadash applied expand migrations only: this binary runs on them.
    Ahead(Vec<Applied>),
    /// A newer wadash applied contract migrations (listed): this binary must not run.
    Incompatible(Vec<Applied>),
}

/// Compares the applied migrations with the versions this binary carries.
pub fn judge(applied: &[Applied], known: &BTreeSet<i64>) -> Compat {
    let unknown: Vec<Applied> = applied
        .iter()
        .filter(|m| !known.contains(&m.version))
        .cloned()
        .collect();
    if unknown.is_empty() {
        return Compat::Known;
    }
    let contract: Vec<Applied> = unknown
        .iter()
        .filter(|m| is_contract(&m.description))
        .cloned()
        .collect();
    if contract.is_empty() {
        Compat::Ahead(unknown)
    } else {
        Compat::Incompatible(contract)
    }
}

/// Whether a migration's description (or file stem after the version) marks a contract.
pub fn is_contract(description: &str) -> bool {
    description.starts_with(CONTRACT_PREFIX)
        || description.starts_with("contract_")
        || description == "contract"
}

/// `20261207000031 (bot choice contents), …` for messages.
pub fn list(migrations: &[Applied]) -> String {
    migrations
        .iter()
        .map(|m| format!("{} ({})", m.version, m.description))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn applied(version: i64, description: &str) -> Applied {
        Applied {
            version,
            description: description.to_owned(),
        }
    }

    fn known(versions: &[i64]) -> BTreeSet<i64> {
        versions.iter().copied().collect()
    }

    #[test]
    fn applied_migrations_this_binary_carries_are_known_even_with_some_pending() {
        let db = [applied(1, "init"), applied(2, "live log")];
        assert_eq!(judge(&db, &known(&[1, 2, 3])), Compat::Known);
        assert_eq!(judge(&[], &known(&[1])), Compat::Known);
    }

    #[test]
    fn newer_expand_migrations_let_an_older_binary_run() {
        let db = [applied(1, "init"), applied(2, "bot choice contents")];
        assert_eq!(
            judge(&db, &known(&[1])),
            Compat::Ahead(vec![applied(2, "bot choice contents")])
        );
    }

    #[test]
    fn a_newer_contract_migration_stops_an_older_binary_and_is_named() {
        let db = [
            applied(1, "init"),
            applied(2, "add thing"),
            applied(3, "contract drop messages legacy"),
        ];
        let Compat::Incompatible(found) = judge(&db, &known(&[1])) else {
            panic!("a contract migration must make the binary incompatible");
        };
        assert_eq!(found, vec![applied(3, "contract drop messages legacy")]);
        assert_eq!(list(&found), "3 (contract drop messages legacy)");
    }

    #[test]
    fn a_known_contract_migration_is_fine() {
        let db = [applied(1, "init"), applied(3, "contract drop x")];
        assert_eq!(judge(&db, &known(&[1, 3])), Compat::Known);
    }

    /// Statements that remove or narrow what an older binary may use.
    const CONTRACTING: &[&str] = &[
        "drop table",
        "drop column",
        "drop view",
        "drop function",
        "drop type",
        "rename",
        "set data type",
        "set not null",
    ];

    /// `ALTER COLUMN x TYPE …` (retyping), which `CREATE TYPE` or a column named `type` is not.
    fn retypes_a_column(sql: &str) -> bool {
        sql.split("alter column ")
            .skip(1)
            .any(|rest| rest.split_whitespace().nth(1) == Some("type"))
    }

    #[test]
    fn migrations_that_remove_or_narrow_are_marked_as_contracts() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let Some((version, stem)) = name.trim_end_matches(".sql").split_once('_') else {
                panic!("{name}: not <version>_<description>.sql");
            };
            let version: i64 = version.parse().unwrap();
            if version <= RULE_SINCE {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            let sql = text
                .lines()
                .map(|l| l.split("--").next().unwrap_or(""))
                .collect::<Vec<_>>()
                .join(" ")
                .to_lowercase();
            let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
            let found = CONTRACTING
                .iter()
                .copied()
                .find(|bad| sql.contains(bad))
                .or(retypes_a_column(&sql).then_some("alter column … type"));
            if let Some(bad) = found {
                assert!(
                    is_contract(stem),
                    "{name} contains `{bad}`, which breaks the previous release during a rolling \
                     upgrade: add instead (expand), or name the file <version>_contract_<what>.sql \
                     and ship it a release after the code stopped using what it removes \
                     (docs/deploy.md, Upgrades)"
                );
            }
        }
    }

    #[test]
    fn retyping_is_told_from_types_and_columns_named_type() {
        assert!(retypes_a_column(
            "alter table m alter column body type bytea;"
        ));
        assert!(!retypes_a_column(
            "alter table m alter column kind set default 'x';"
        ));
        assert!(!retypes_a_column("create type kind as enum ('a');"));
    }

    #[test]
    fn only_the_leading_word_marks_a_contract() {
        assert!(is_contract("contract drop x"));
        assert!(!is_contract("contracts table"));
        assert!(!is_contract("add contract column"));
    }
}
