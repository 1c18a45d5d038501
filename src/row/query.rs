//! The one query that loads a row: `SELECT * FROM "table" WHERE "key" = $1`, with the table
//! and key column quoted as SQL identifiers and the key value always a bind parameter.

use super::TableRow;
use sqlx::PgPool;

/// What went wrong while reading a row.
#[derive(Debug)]
pub(crate) enum QueryError {
    /// The type's table or key column is not a usable identifier: a bug in its `TableRow`.
    BadName(String),
    /// The database failed, or the row did not decode into the type.
    Database(sqlx::Error),
}

/// The row of `T` whose key column holds `key`, if there is one.
pub(crate) async fn fetch<T: TableRow>(
    pool: &PgPool,
    key: &T::Key,
) -> Result<Option<T>, QueryError> {
    let sql = select_by_key(T::TABLE, T::KEY).map_err(QueryError::BadName)?;
    sqlx::query_as::<_, T>(&sql)
        .bind(key.clone())
        .fetch_optional(pool)
        .await
        .map_err(QueryError::Database)
}

/// `SELECT * FROM <table> WHERE <key> = $1`. `table` may name its schema (`billing.invoices`):
/// each dot-separated part is quoted on its own; `key` is one column name.
fn select_by_key(table: &str, key: &str) -> Result<String, String> {
    let table = table
        .split('.')
        .map(quote_identifier)
        .collect::<Result<Vec<_>, _>>()?
        .join(".");
    let key = quote_identifier(key)?;
    Ok(format!("SELECT * FROM {table} WHERE {key} = $1"))
}

/// `name` as a quoted SQL identifier: inside double quotes, each `"` doubled. Empty names and
/// NUL characters, which no quoting makes valid, are refused.
fn quote_identifier(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("an empty table or column name".into());
    }
    if name.contains('\0') {
        return Err(format!("the name {name:?} contains a NUL character"));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_and_values_are_parameters() {
        assert_eq!(
            select_by_key("users", "id").unwrap(),
            r#"SELECT * FROM "users" WHERE "id" = $1"#
        );
        assert_eq!(
            select_by_key("billing.Invoices", "number").unwrap(),
            r#"SELECT * FROM "billing"."Invoices" WHERE "number" = $1"#
        );
        assert_eq!(
            select_by_key(r#"x"; DROP TABLE users; --"#, "id").unwrap(),
            r#"SELECT * FROM "x""; DROP TABLE users; --" WHERE "id" = $1"#
        );
    }

    #[test]
    fn names_no_quoting_can_fix_are_refused() {
        assert!(select_by_key("", "id").is_err());
        assert!(select_by_key("billing.", "id").is_err());
        assert!(select_by_key("users", "").is_err());
        assert!(select_by_key("users", "i\0d").is_err());
    }
}
