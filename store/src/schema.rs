//! Whether a database's schema is the one this binary was built for.

use sqlx::migrate::Migrator;

/// What `migrator`'s migrations lack in `applied` (each applied migration's version and
/// whether it succeeded), said for an operator; `None` when nothing is missing.
pub(crate) fn missing_migrations(migrator: &Migrator, applied: &[(i64, bool)]) -> Option<String> {
    if applied.is_empty() {
        return Some("the database has no ticketing schema".to_owned());
    }
    let failed: Vec<String> = migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .filter(|m| applied.contains(&(m.version, false)))
        .map(|m| format!("{} ({})", m.version, m.description))
        .collect();
    if !failed.is_empty() {
        return Some(format!(
            "the database's migration {} failed part-way",
            failed.join(", ")
        ));
    }
    let missing: Vec<String> = migrator
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .filter(|m| !applied.contains(&(m.version, true)))
        .map(|m| format!("{} ({})", m.version, m.description))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "the database's schema is behind this binary: migration {} not applied",
            missing.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::MIGRATOR;

    fn all_applied() -> Vec<(i64, bool)> {
        MIGRATOR.iter().map(|m| (m.version, true)).collect()
    }

    #[test]
    fn a_database_with_every_migration_is_current_even_with_newer_ones() {
        assert_eq!(missing_migrations(&MIGRATOR, &all_applied()), None);
        let mut ahead = all_applied();
        ahead.push((9_999, true));
        assert_eq!(missing_migrations(&MIGRATOR, &ahead), None);
    }

    #[test]
    fn a_new_database_a_missing_migration_and_a_failed_one_are_each_named() {
        let empty = missing_migrations(&MIGRATOR, &[]).unwrap();
        assert!(empty.contains("no ticketing schema"), "{empty}");

        let last = MIGRATOR.iter().last().unwrap();
        let mut behind = all_applied();
        behind.pop();
        let said = missing_migrations(&MIGRATOR, &behind).unwrap();
        assert!(said.contains(&last.version.to_string()), "{said}");
        assert!(said.contains(last.description.as_ref()), "{said}");

        let mut failed = all_applied();
        failed.last_mut().unwrap().1 = false;
        let said = missing_migrations(&MIGRATOR, &failed).unwrap();
        assert!(said.contains("failed part-way"), "{said}");
    }
}
