//! Redis's clock: schedulers, repairs and operations commands read it so that every process
//! agrees on what is due.

use super::Broker;
use crate::error::{Error, Result};
use crate::time::time_reply_ms;
use deadpool_redis::redis;

impl Broker {
    /// Redis's clock, in ms since the epoch.
    pub(crate) async fn redis_time_ms(&self) -> Result<u64> {
        let mut conn = self.conn().await?;
        let (secs, micros): (u64, u64) = redis::cmd("TIME")
            .query_async(&mut conn)
            .await
            .map_err(Error::redis("time"))?;
        Ok(time_reply_ms(secs, micros))
    }
}
