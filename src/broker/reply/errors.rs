//! Error replies the broker acts on rather than passes along.

use redis::RedisError;

/// Whether Redis's error says that a stream or its consumer group is gone: NOGROUP, or "no
/// such key" (XINFO GROUPS on a stream that no longer exists); alone, or among the errors of
/// a pipeline.
pub(crate) fn says_group_missing(error: &RedisError) -> bool {
    let Some(errors) = error.clone().into_server_errors() else {
        return false;
    };
    errors.iter().any(|(_, e)| {
        e.code() == "NOGROUP"
            || e.details()
                .is_some_and(|d| d.to_lowercase().contains("no such key"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::aio::ConnectionLike;
    use redis::{Cmd, ErrorKind, Pipeline, RedisFuture, Value};
    use std::io;

    /// A connection that answers every command with the next of `replies`, as Redis would.
    struct Replies(Vec<Value>);

    impl ConnectionLike for Replies {
        fn req_packed_command<'a>(&'a mut self, _: &'a Cmd) -> RedisFuture<'a, Value> {
            let reply = self.0.remove(0);
            Box::pin(async move { Ok(reply) })
        }

        fn req_packed_commands<'a>(
            &'a mut self,
            _: &'a Pipeline,
            _: usize,
            count: usize,
        ) -> RedisFuture<'a, Vec<Value>> {
            let replies = self.0.drain(..count).collect();
            Box::pin(async move { Ok(replies) })
        }

        fn get_db(&self) -> i64 {
            0
        }
    }

    /// The value Redis sends for the error reply `-{text}`.
    fn error_reply(text: &str) -> Value {
        redis::parse_redis_value(format!("-{text}\r\n").as_bytes()).unwrap()
    }

    const NOGROUP: &str =
        "NOGROUP No such key 'q:{g}:stream' or consumer group 'g' in XREADGROUP with GROUP option";

    async fn command_error(text: &str) -> RedisError {
        redis::cmd("XREADGROUP")
            .query_async::<Value>(&mut Replies(vec![error_reply(text)]))
            .await
            .unwrap_err()
    }

    async fn pipeline_error(text: &str) -> RedisError {
        let mut pipe = redis::pipe();
        pipe.cmd("EXISTS").cmd("XREADGROUP");
        pipe.query_async::<Vec<Value>>(&mut Replies(vec![Value::Int(0), error_reply(text)]))
            .await
            .unwrap_err()
    }

    #[tokio::test]
    async fn nogroup_is_recognised_alone_and_inside_a_pipeline_error() {
        assert!(says_group_missing(&command_error(NOGROUP).await));
        let in_pipeline = pipeline_error(NOGROUP).await;
        assert!(
            in_pipeline.to_string().starts_with("Pipeline failure"),
            "{in_pipeline}"
        );
        assert!(says_group_missing(&in_pipeline));
        assert!(says_group_missing(&pipeline_error("ERR no such key").await));
    }

    #[tokio::test]
    async fn other_errors_are_not_a_missing_group() {
        assert!(!says_group_missing(
            &command_error("ERR wrong number of arguments").await
        ));
        assert!(!says_group_missing(
            &pipeline_error("LOADING Redis is loading").await
        ));
        assert!(!says_group_missing(&RedisError::from(io::Error::from(
            io::ErrorKind::ConnectionReset
        ))));
        assert!(!says_group_missing(&RedisError::from((
            ErrorKind::Parse,
            "bad reply"
        ))));
    }
}
