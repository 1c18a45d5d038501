//! What a fetcher knows of its group's streams from its last read (each stream's undelivered
//! count), and the read it plans from it: highest priority first, never a lower stream
//! before one whose count is unknown.

use crate::broker::GroupState;
use crate::priority::Priority;

/// What the fetcher knows of the group's streams from its last fetch, to size the next one.
#[derive(Debug, Default)]
pub(crate) struct Known {
    /// The group's state on the high, default and low streams; `None` before the first fetch
    /// and after an error.
    pub(crate) streams: Option<Vec<GroupState>>,
}

impl Known {
    /// How many entries to take from which stream, for `free` slots: highest priority first,
    /// each stream at most its undelivered entries; a stream whose count is unknown takes all
    /// that is left (so a lower one is never read before it). Empty when nothing waits.
    pub(crate) fn plan(&self, free: usize) -> Vec<(Priority, usize)> {
        let mut left = free;
        let mut plan = Vec::new();
        for (i, priority) in Priority::ALL.into_iter().enumerate() {
            if left == 0 {
                break;
            }
            let lag = match &self.streams {
                Some(s) => s[i].lag,
                _ => None,
            };
            match lag {
                Some(0) => {}
                Some(n) => {
                    let take = left.min(usize::try_from(n).unwrap_or(usize::MAX));
                    plan.push((priority, take));
                    left -= take;
                }
                None => {
                    plan.push((priority, left));
                    left = 0;
                }
            }
        }
        plan
    }

    /// The streams whose undelivered count Redis did not give: the next fetch probes them.
    pub(crate) fn unknown(&self) -> Vec<Priority> {
        match &self.streams {
            Some(s) => Priority::ALL
                .into_iter()
                .zip(s)
                .filter(|(_, g)| g.lag.is_none())
                .map(|(p, _)| p)
                .collect(),
            None => Vec::new(),
        }
    }

    /// Forgets the undelivered counts of the streams in `streams` (bit 0 high, 1 default,
    /// 2 low), which entries were handed back to: the next plan reads them first.
    pub(crate) fn forget(&mut self, streams: u8) {
        if let Some(s) = &mut self.streams {
            for (i, state) in s.iter_mut().enumerate() {
                if streams & (1 << i) != 0 {
                    state.lag = None;
                }
            }
        }
    }

    /// Takes in a fetch's view of the streams. A stream read for more than it delivered has
    /// nothing left at that moment, whatever its lag said.
    pub(crate) fn update(
        &mut self,
        mut streams: Vec<GroupState>,
        plan: &[(Priority, usize)],
        delivered: [usize; 3],
    ) {
        for &(priority, asked) in plan {
            let state = &mut streams[priority.index() - 1];
            if delivered[priority.index() - 1] < asked && state.lag.is_none() {
                state.lag = Some(0);
            }
        }
        self.streams = Some(streams);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(lags: [Option<u64>; 3]) -> Known {
        Known {
            streams: Some(
                lags.iter()
                    .map(|&lag| GroupState {
                        last_delivered: "0-0".into(),
                        lag,
                    })
                    .collect(),
            ),
        }
    }

    #[test]
    fn plans_take_higher_priorities_first_and_never_more_than_the_free_slots() {
        use Priority::*;
        assert_eq!(
            Known::default().plan(10),
            vec![(High, 10)],
            "unknown: high alone"
        );
        assert_eq!(
            known([Some(3), Some(20), Some(5)]).plan(10),
            vec![(High, 3), (Default, 7)]
        );
        assert_eq!(
            known([Some(0), Some(2), Some(5)]).plan(10),
            vec![(Default, 2), (Low, 5)]
        );
        assert_eq!(
            known([Some(0), None, Some(5)]).plan(10),
            vec![(Default, 10)],
            "unknown lag takes all that is left"
        );
        assert!(
            known([Some(0), Some(0), Some(0)]).plan(10).is_empty(),
            "nothing waits"
        );
    }

    #[test]
    fn a_stream_read_for_more_than_it_had_counts_as_empty_when_redis_gives_no_lag() {
        let mut forgot = known([Some(0), Some(0), Some(5)]);
        forgot.forget(0b001);
        assert_eq!(
            forgot.plan(10),
            vec![(Priority::High, 10)],
            "handed back to"
        );
        let mut k = Known::default();
        k.update(
            known([None, None, Some(4)]).streams.unwrap(),
            &[(Priority::High, 5)],
            [1, 0, 0],
        );
        assert_eq!(k.plan(10), vec![(Priority::Default, 10)]);
    }
}
