//! [`Row<T>`]: a job argument that names a row (table, key, optional version) and, in the
//! worker, holds the row loaded before the handler runs.

use super::TableRow;
use super::policy::{ChangedRow, MissingRow};
use super::query::{QueryError, fetch};
use crate::task::TaskError;
use futures_util::future::BoxFuture;
use serde::de::{Deserializer, Error as _};
use serde::ser::{SerializeStruct, Serializer};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::fmt;
use std::ops::Deref;

/// A job argument that is a database row: on the wire only the row's table, key and
/// (optionally) version; in the handler the row itself, loaded by the worker just before the
/// handler runs, so the handler sees the row as it is then (committed, with later updates).
///
/// Producers build one with [`Row::new`] (key and version from a value) or [`Row::from_key`];
/// a handler receives it inside [`Loaded`](crate::Loaded) and reads the row through `Deref`.
/// Its wire form is a map `{"table": "users", "key": 42, "version": 3}` (`version` only when
/// captured), in the job's MessagePack or JSON args.
///
/// ```no_run
/// use serde::{Deserialize, Serialize};
/// use sqlx::PgPool;
/// use streamworker::{Client, HasRows, Job, LoadRow, Loaded, Row, TableRow, TaskError, Worker};
///
/// #[derive(sqlx::FromRow)]
/// struct User { id: i64, email: String, version: i64 }
///
/// impl TableRow for User {
///     const TABLE: &'static str = "users";
///     const KEY: &'static str = "id";
///     type Key = i64;
///     fn key(&self) -> i64 { self.id }
///     fn version(&self) -> Option<i64> { Some(self.version) }
/// }
///
/// #[derive(Serialize, Deserialize)]
/// struct Welcome { user: Row<User>, referrer: Option<Row<User>> }
///
/// impl HasRows for Welcome {
///     fn rows_mut(&mut self) -> Vec<&mut dyn LoadRow> {
///         let mut rows: Vec<&mut dyn LoadRow> = vec![&mut self.user];
///         rows.extend(self.referrer.rows_mut());
///         rows
///     }
/// }
///
/// async fn send_welcome(Loaded(welcome): Loaded<Welcome>) -> Result<(), TaskError> {
///     println!("welcome, {}", welcome.user.email); // the row as it is now
///     Ok(())
/// }
///
/// # async fn demo(pool: PgPool) -> Result<(), streamworker::Error> {
/// let url = "redis://127.0.0.1:6379";
/// let args = Welcome { user: Row::from_key(42), referrer: None };
/// Client::connect(url).await?.enqueue(Job::new("emails", "send_welcome", &args)?).await?;
///
/// let worker = Worker::builder(url)
///     .group("emails")
///     .state(pool) // rows are read through the state's pool (`RowPool`)
///     .task("send_welcome", send_welcome)
///     .build()?;
/// worker.run(async { tokio::signal::ctrl_c().await.ok(); }).await
/// # }
/// ```
pub struct Row<T: TableRow> {
    key: T::Key,
    version: Option<i64>,
    value: Option<T>,
}

impl<T: TableRow> Row<T> {
    /// A reference to `row`: its key, and its version when the type has one.
    pub fn new(row: &T) -> Row<T> {
        Row {
            key: row.key(),
            version: row.version(),
            value: None,
        }
    }

    /// A reference to the row whose key column holds `key`, without a version.
    pub fn from_key(key: T::Key) -> Row<T> {
        Row {
            key,
            version: None,
            value: None,
        }
    }

    /// This reference with `version` captured: the job notices when the row's version differs
    /// at run time (see [`ChangedRow`]).
    pub fn with_version(mut self, version: i64) -> Row<T> {
        self.version = Some(version);
        self
    }

    /// An already loaded row, for calling a handler directly (tests, scripts); it serializes as
    /// [`Row::new`] would.
    pub fn loaded(row: T) -> Row<T> {
        Row {
            key: row.key(),
            version: row.version(),
            value: Some(row),
        }
    }

    /// The row's key.
    pub fn key(&self) -> &T::Key {
        &self.key
    }

    /// The version captured at enqueue, if any.
    pub fn version(&self) -> Option<i64> {
        self.version
    }

    /// The loaded row; `None` before loading (a producer's reference, or args decoded without
    /// [`Loaded`](crate::Loaded)).
    pub fn get(&self) -> Option<&T> {
        self.value.as_ref()
    }

    /// The loaded row, owned; `None` before loading.
    pub fn into_inner(self) -> Option<T> {
        self.value
    }

    /// `users/42`: the table and key, as the failure reasons name a row.
    fn name(&self) -> String {
        format!("{}/{}", T::TABLE, self.key)
    }
}

impl<T: TableRow> Deref for Row<T> {
    type Target = T;

    /// The loaded row. Panics when it is not loaded: take the handler's arguments as
    /// [`Loaded<A>`](crate::Loaded) so that the worker loads them first.
    fn deref(&self) -> &T {
        match &self.value {
            Some(row) => row,
            None => panic!(
                "row {} is not loaded: take the handler's arguments as streamworker::Loaded<..>",
                self.name()
            ),
        }
    }
}

impl<T: TableRow + Clone> Clone for Row<T> {
    fn clone(&self) -> Self {
        Row {
            key: self.key.clone(),
            version: self.version,
            value: self.value.clone(),
        }
    }
}

impl<T: TableRow> fmt::Debug for Row<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Row")
            .field("table", &T::TABLE)
            .field("key", &self.key)
            .field("version", &self.version)
            .field("loaded", &self.value.is_some())
            .finish()
    }
}

/// Field names of the wire form.
const TABLE: &str = "table";
const KEY: &str = "key";
const VERSION: &str = "version";

impl<T: TableRow> Serialize for Row<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = if self.version.is_some() { 3 } else { 2 };
        let mut map = serializer.serialize_struct("Row", fields)?;
        map.serialize_field(TABLE, T::TABLE)?;
        map.serialize_field(KEY, &self.key)?;
        if let Some(version) = self.version {
            map.serialize_field(VERSION, &version)?;
        }
        map.end()
    }
}

/// The wire form as read: unknown fields are ignored.
#[derive(Deserialize)]
struct Wire<K> {
    table: String,
    key: K,
    #[serde(default)]
    version: Option<i64>,
}

impl<'de, T: TableRow> Deserialize<'de> for Row<T> {
    /// Refuses a reference to another table than `T`'s: the job's args then do not decode
    /// and it goes to the dead stream with the reason.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::<T::Key>::deserialize(deserializer)?;
        if wire.table != T::TABLE {
            return Err(D::Error::custom(format!(
                "a row of table {:?} where {} expects table {:?}",
                wire.table,
                std::any::type_name::<T>(),
                T::TABLE
            )));
        }
        Ok(Row {
            key: wire.key,
            version: wire.version,
            value: None,
        })
    }
}

mod sealed {
    pub trait Sealed {}
    impl<T: super::TableRow> Sealed for super::Row<T> {}
}

/// A row argument the worker can load: implemented by every [`Row<T>`] and only by it. Named
/// in [`HasRows::rows_mut`](crate::HasRows::rows_mut), which lists a job's rows.
pub trait LoadRow: Send + sealed::Sealed {
    /// Reads the row and keeps it, or says why the job must not run with it.
    #[doc(hidden)]
    fn load<'a>(
        &'a mut self,
        pool: &'a PgPool,
        missing: MissingRow,
        changed: ChangedRow,
    ) -> BoxFuture<'a, Result<(), TaskError>>;
}

impl<T: TableRow> LoadRow for Row<T> {
    fn load<'a>(
        &'a mut self,
        pool: &'a PgPool,
        missing: MissingRow,
        changed: ChangedRow,
    ) -> BoxFuture<'a, Result<(), TaskError>> {
        Box::pin(async move {
            let found = fetch::<T>(pool, &self.key).await.map_err(|e| match e {
                QueryError::BadName(why) => TaskError::fatal(format!(
                    "{} cannot be loaded: {why}",
                    std::any::type_name::<T>()
                )),
                QueryError::Database(e) => {
                    TaskError::retry(format!("row {} could not be read: {e}", self.name()))
                }
            })?;
            let Some(row) = found else {
                let reason = format!("row {} not found", self.name());
                return Err(match missing {
                    MissingRow::Dead => TaskError::not_run(reason),
                    MissingRow::Retry => TaskError::retry(reason),
                });
            };
            if let (Some(then), Some(now)) = (self.version, row.version())
                && then != now
                && changed == ChangedRow::Dead
            {
                return Err(TaskError::not_run(format!(
                    "row {} changed: version {then} at enqueue, {now} now",
                    self.name()
                )));
            }
            self.value = Some(row);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, sqlx::FromRow)]
    struct User {
        id: i64,
        version: i64,
    }

    impl TableRow for User {
        const TABLE: &'static str = "users";
        const KEY: &'static str = "id";
        type Key = i64;
        fn key(&self) -> i64 {
            self.id
        }
        fn version(&self) -> Option<i64> {
            Some(self.version)
        }
    }

    #[test]
    fn the_wire_form_is_table_key_and_version_when_captured() {
        let user = User { id: 42, version: 3 };
        let with = serde_json::to_value(Row::new(&user)).unwrap();
        assert_eq!(with, json!({"table": "users", "key": 42, "version": 3}));
        let without = serde_json::to_value(Row::<User>::from_key(42)).unwrap();
        assert_eq!(without, json!({"table": "users", "key": 42}));
        let packed = rmp_serde::to_vec_named(&Row::<User>::from_key(7).with_version(1)).unwrap();
        let read: serde_json::Value = rmp_serde::from_slice(&packed).unwrap();
        assert_eq!(read, json!({"table": "users", "key": 7, "version": 1}));
    }

    #[test]
    fn references_read_back_unloaded_and_other_tables_are_refused() {
        let row: Row<User> =
            serde_json::from_value(json!({"table": "users", "key": 42, "extra": true})).unwrap();
        assert_eq!(
            (*row.key(), row.version(), row.get().is_none()),
            (42, None, true)
        );
        let err = serde_json::from_value::<Row<User>>(json!({"table": "orders", "key": 1}))
            .unwrap_err()
            .to_string();
        assert!(err.contains(r#"a row of table "orders""#), "{err}");
        assert!(
            serde_json::from_value::<Row<User>>(json!({"table": "users", "key": "x"})).is_err()
        );
    }
}
