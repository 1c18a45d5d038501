//! Commands for several groups at once. On a single node they go in one pipeline; on a Redis
//! Cluster each group's keys live in the group's own hash slot, and a pipeline reaches one
//! slot, so they go in one pipeline per group, sent together.

use super::Broker;
use crate::error::{Error, Result};
use crate::keys::GroupName;
use deadpool_redis::redis;
use redis::{Cmd, FromRedisValue, Value};
use std::collections::BTreeMap;

impl Broker {
    /// Runs each `(group, command)` (a command touching only that group's keys) and returns
    /// the replies in the order given; errors carry `op`.
    pub(crate) async fn query_per_group<T: FromRedisValue>(
        &self,
        commands: Vec<(&GroupName, Cmd)>,
        op: &'static str,
    ) -> Result<Vec<T>> {
        let mut batches: BTreeMap<&str, (redis::Pipeline, Vec<usize>)> = BTreeMap::new();
        let split = self.is_cluster().await?;
        for (i, (group, cmd)) in commands.into_iter().enumerate() {
            let name = if split { group.as_str() } else { "" };
            let (pipe, order) = batches
                .entry(name)
                .or_insert_with(|| (redis::pipe(), Vec::new()));
            pipe.add_command(cmd);
            order.push(i);
        }
        let sent = batches.into_values().map(|(pipe, order)| async move {
            let mut conn = self.conn().await?;
            let replies: Vec<Value> = pipe
                .query_async(&mut conn)
                .await
                .map_err(Error::redis(op))?;
            Ok::<_, Error>(order.into_iter().zip(replies))
        });
        let mut out: Vec<Option<Value>> = Vec::new();
        for replies in futures_util::future::join_all(sent).await {
            for (i, reply) in replies? {
                if out.len() <= i {
                    out.resize(i + 1, None);
                }
                out[i] = Some(reply);
            }
        }
        out.into_iter()
            .map(|reply| {
                T::from_redis_value(reply.unwrap_or(Value::Nil))
                    .map_err(|e| Error::redis(op)(e.into()))
            })
            .collect()
    }
}
