//! The main navigation: the pages in four groups (Monitor · Engage · Money · Setup), each
//! entry shown only to the roles that may use it, the current page and its group marked.

use crate::domain::Role;

/// A group of the navigation and the entries this person may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NavGroup {
    pub label: &'static str,
    pub items: Vec<NavItem>,
    /// The current page is one of the group's.
    pub current: bool,
    /// Folded into a drop-down on a mid-sized screen (the admin's Setup), so that the
    /// navigation fits one line at 1280 px.
    pub fold: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub current: bool,
}

/// (group, [(href, label, the `Chrome::active` key, the least role that sees it)])
type Entry = (&'static str, &'static str, &'static str, Role);

const GROUPS: &[(&str, &[Entry])] = &[
    (
        "Monitor",
        &[
            ("/", "Overview", "overview", Role::Viewer),
            ("/messages", "Messages", "messages", Role::Viewer),
            ("/alerts", "Alerts", "alerts", Role::Viewer),
        ],
    ),
    (
        "Engage",
        &[
            ("/send", "Send", "send", Role::Operator),
            ("/broadcasts", "Broadcasts", "broadcasts", Role::Viewer),
            ("/reminders", "Reminders", "reminders", Role::Viewer),
            ("/contacts", "Contacts", "contacts", Role::Viewer),
            ("/templates", "Templates", "templates", Role::Viewer),
        ],
    ),
    (
        "Money",
        &[
            ("/balance", "Balance", "balance", Role::Viewer),
            ("/costs", "Costs", "costs", Role::Viewer),
            ("/admin/prices", "Prices", "prices", Role::Admin),
        ],
    ),
    (
        "Setup",
        &[
            ("/admin", "Admin", "admin", Role::Admin),
            ("/admin/senders", "Senders", "senders", Role::Admin),
            ("/admin/rules", "Rules", "rules", Role::Admin),
            (
                "/admin/alerts",
                "Alert settings",
                "alert-settings",
                Role::Admin,
            ),
        ],
    ),
];

/// The group folded on mid-sized screens.
const FOLDED: &str = "Setup";

/// The groups `role` sees (a group with no entry for it is left out), `active` marked.
pub fn groups(role: Role, active: &str) -> Vec<NavGroup> {
    GROUPS
        .iter()
        .map(|(label, entries)| {
            let items: Vec<NavItem> = entries
                .iter()
                .filter(|(.., need)| role.allows(*need))
                .map(|&(href, label, key, _)| NavItem {
                    href,
                    label,
                    current: key == active,
                })
                .collect();
            NavGroup {
                label,
                current: items.iter().any(|i| i.current),
                fold: *label == FOLDED,
                items,
            }
        })
        .filter(|g| !g.items.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(role: Role) -> Vec<(&'static str, Vec<&'static str>)> {
        groups(role, "")
            .into_iter()
            .map(|g| (g.label, g.items.iter().map(|i| i.label).collect()))
            .collect()
    }

    #[test]
    fn each_role_sees_what_it_may_use_in_its_groups() {
        assert_eq!(
            labels(Role::Viewer),
            vec![
                ("Monitor", vec!["Overview", "Messages", "Alerts"]),
                (
                    "Engage",
                    vec!["Broadcasts", "Reminders", "Contacts", "Templates"]
                ),
                ("Money", vec!["Balance", "Costs"]),
            ]
        );
        let operator = labels(Role::Operator);
        assert_eq!(
            operator[1].1,
            vec!["Send", "Broadcasts", "Reminders", "Contacts", "Templates"]
        );
        assert_eq!(operator.len(), 3, "no Setup for operators");
        let admin = labels(Role::Admin);
        assert_eq!(admin[2].1, vec!["Balance", "Costs", "Prices"]);
        assert_eq!(
            admin[3],
            ("Setup", vec!["Admin", "Senders", "Rules", "Alert settings"])
        );
    }

    #[test]
    fn the_current_page_and_its_group_are_marked() {
        let g = groups(Role::Admin, "rules");
        let current: Vec<_> = g
            .iter()
            .flat_map(|g| g.items.iter())
            .filter(|i| i.current)
            .map(|i| i.href)
            .collect();
        assert_eq!(current, vec!["/admin/rules"]);
        assert_eq!(
            g.iter()
                .filter(|g| g.current)
                .map(|g| g.label)
                .collect::<Vec<_>>(),
            vec!["Setup"]
        );
        assert!(groups(Role::Admin, "account").iter().all(|g| !g.current));
        let folded: Vec<_> = g.iter().filter(|g| g.fold).map(|g| g.label).collect();
        assert_eq!(folded, vec!["Setup"]);
    }
}
