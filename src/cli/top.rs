//! `streamworker top`: a live view of every group (backlogs, in flight, rates, consumers),
//! refreshed every second; `q`, Esc or Ctrl-C quits. When stdout is not a terminal it prints
//! one frame and exits, so it can be piped or watched by scripts.

use super::safe::Shown;
use super::table::{Table, opt_ms, print_json, short_ms};
use super::width::fit;
use crate::admin::{Admin, GroupStatus};
use crate::broker::redact_url;
use crate::error::{Error, Result};
use crate::time::utc;
use crossterm::event::{Event, EventStream, KeyCode, KeyEvent, KeyModifiers};
use crossterm::{cursor, execute, queue, terminal};
use futures_util::StreamExt;
use std::io::{IsTerminal, Write};
use std::time::Duration;

/// Flags of `streamworker top`.
#[derive(Debug, clap::Args)]
pub(super) struct TopArgs {
    /// Time between refreshes (e.g. 1s, 500ms)
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1s")]
    interval: Duration,
}

pub(super) async fn run(redis: &str, json: bool, args: TopArgs) -> Result<()> {
    let admin = Admin::connect(redis).await?;
    let url = Shown::from(redact_url(redis)).to_string();
    if json || !std::io::stdout().is_terminal() {
        let all = admin.status_all().await?;
        if json {
            return print_json(&all);
        }
        print!("{}", render(&url, &all, 160, usize::MAX));
        return Ok(());
    }
    if args.interval.is_zero() {
        return Err(Error::Config("--interval must be more than 0".into()));
    }
    live(&admin, &url, args.interval).await
}

/// Puts the terminal back as it was when dropped, whatever ends the view.
struct Screen;

impl Screen {
    fn enter() -> Result<Screen> {
        terminal::enable_raw_mode().map_err(term_error)?;
        let screen = Screen;
        execute!(
            std::io::stdout(),
            terminal::EnterAlternateScreen,
            cursor::Hide
        )
        .map_err(term_error)?;
        Ok(screen)
    }

    fn draw(&self, frame: &str) -> Result<()> {
        let mut out = std::io::stdout().lock();
        queue!(
            out,
            cursor::MoveTo(0, 0),
            terminal::Clear(terminal::ClearType::All)
        )
        .map_err(term_error)?;
        // Raw mode: a newline moves down without returning to the first column.
        out.write_all(frame.replace('\n', "\r\n").as_bytes())
            .and_then(|()| out.flush())
            .map_err(term_error)
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = execute!(
            std::io::stdout(),
            cursor::Show,
            terminal::LeaveAlternateScreen
        );
        let _ = terminal::disable_raw_mode();
    }
}

fn term_error(e: std::io::Error) -> Error {
    Error::Config(format!("cannot drive the terminal: {e}"))
}

async fn live(admin: &Admin, url: &str, interval: Duration) -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())
        .map_err(|e| Error::Config(format!("cannot install signal handlers: {e}")))?;
    let screen = Screen::enter()?;
    let mut events = EventStream::new();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Option<Vec<GroupStatus>> = None;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let frame = match admin.status_all().await {
                    Ok(all) => {
                        let frame = render_sized(url, &all);
                        last = Some(all);
                        frame
                    }
                    Err(e) => format!(
                        "streamworker top  {url}\n\nerror: {}\n(retrying; q to quit)\n",
                        Shown::from(e.to_string())
                    ),
                };
                screen.draw(&frame)?;
            }
            event = events.next() => match event {
                Some(Ok(Event::Key(key))) if is_quit(key) => break,
                Some(Ok(Event::Resize(..))) => {
                    if let Some(all) = &last {
                        screen.draw(&render_sized(url, all))?;
                    }
                }
                None | Some(Err(_)) => break,
                _ => {}
            },
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    drop(screen);
    Ok(())
}

fn is_quit(key: KeyEvent) -> bool {
    matches!(
        key.code,
        KeyCode::Char('q') | KeyCode::Char('Q') | KeyCode::Esc
    ) || (key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL))
}

fn render_sized(url: &str, all: &[GroupStatus]) -> String {
    // A terminal that reports no size (some pseudo-terminals) gets a common one.
    let (w, h) = match terminal::size() {
        Ok((w, h)) if w > 0 && h > 0 => (w, h),
        _ => (120, 40),
    };
    render(url, all, w as usize, h as usize)
}

/// One frame of the view: a header, one row per group, then the consumers; each line cut to
/// `width` display columns and the frame to `height` lines. What came from Redis is in the
/// tables, whose cells are escaped (see `safe`).
pub(crate) fn render(url: &str, groups: &[GroupStatus], width: usize, height: usize) -> String {
    let now = groups.first().map(|g| g.now_ms);
    let mut lines = vec![
        format!(
            "streamworker top  {}  {}  (q or Ctrl-C quits)",
            Shown::from(url),
            now.map_or_else(String::new, utc)
        ),
        String::new(),
    ];
    if groups.is_empty() {
        lines.push("no groups in this Redis yet".into());
    } else {
        let mut table = Table::new(&[
            "GROUP",
            "STATE",
            "READY",
            "IN FLIGHT",
            "DELAYED",
            "DEAD",
            "OLDEST READY",
            "CONSUMERS",
            "DONE/1M",
            "FAILED/1M",
            "DONE/1H",
            "FAILED/1H",
        ]);
        for g in groups {
            table.row(vec![
                g.group.clone(),
                if g.paused { "PAUSED" } else { "active" }.into(),
                g.ready.to_string(),
                g.pending.to_string(),
                g.delayed.to_string(),
                g.dead.to_string(),
                opt_ms(g.oldest_ready_age_ms),
                g.consumers.len().to_string(),
                g.last_minute.succeeded.to_string(),
                g.last_minute.failed.to_string(),
                g.last_hour.succeeded.to_string(),
                g.last_hour.failed.to_string(),
            ]);
        }
        lines.extend(table.render().lines().map(str::to_string));
        let mut consumers = Table::new(&["GROUP", "CONSUMER", "IN FLIGHT", "IDLE"]);
        for g in groups {
            for c in &g.consumers {
                consumers.row(vec![
                    g.group.clone(),
                    c.name.clone(),
                    c.pending.to_string(),
                    short_ms(c.idle_ms),
                ]);
            }
        }
        if !consumers.is_empty() {
            lines.push(String::new());
            lines.extend(consumers.render().lines().map(str::to_string));
        }
    }
    let mut out = String::new();
    for line in lines.iter().take(height) {
        out.push_str(fit(line, width));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{ConsumerStatus, Rates};
    use crate::cli::width::width;

    fn group(name: &str, paused: bool, ready: u64, consumers: Vec<ConsumerStatus>) -> GroupStatus {
        GroupStatus {
            group: name.into(),
            paused,
            paused_since_ms: None,
            ready,
            pending: consumers.iter().map(|c| c.pending).sum(),
            delayed: 2,
            next_due_ms: None,
            dead: 1,
            dead_retention: None,
            oldest_ready_age_ms: (ready > 0).then_some(65_000),
            queues: Vec::new(),
            consumers,
            last_minute: Rates {
                processed: 7,
                succeeded: 5,
                failed: 2,
                retried: 1,
                dead: 1,
            },
            last_hour: Rates {
                processed: 70,
                succeeded: 50,
                failed: 20,
                retried: 15,
                dead: 5,
            },
            now_ms: 1_700_000_000_000,
        }
    }

    #[test]
    fn a_frame_shows_every_group_and_consumer() {
        let groups = vec![
            group(
                "emails",
                false,
                12,
                vec![ConsumerStatus {
                    name: "web-1-00ab".into(),
                    pending: 3,
                    idle_ms: 400,
                }],
            ),
            group("reports", true, 0, Vec::new()),
        ];
        let frame = render("redis://127.0.0.1:6379", &groups, 200, 100);
        let expected = "\
streamworker top  redis://127.0.0.1:6379  2023-11-14T22:13:20Z  (q or Ctrl-C quits)

GROUP    STATE   READY  IN FLIGHT  DELAYED  DEAD  OLDEST READY  CONSUMERS  DONE/1M  FAILED/1M  DONE/1H  FAILED/1H
emails   active     12          3        2     1  1m05s                 1        5          2       50         20
reports  PAUSED      0          0        2     1  -                     0        5          2       50         20

GROUP   CONSUMER    IN FLIGHT  IDLE
emails  web-1-00ab          3  400ms
";
        assert_eq!(frame, expected);
    }

    #[test]
    fn a_frame_fits_the_terminal() {
        let groups: Vec<GroupStatus> = (0..50)
            .map(|i| group(&format!("g{i}"), false, i, Vec::new()))
            .collect();
        let frame = render("redis://h", &groups, 30, 10);
        assert_eq!(frame.lines().count(), 10);
        assert!(frame.lines().all(|l| l.chars().count() <= 30), "{frame}");
        assert!(render("redis://h", &[], 80, 10).contains("no groups"));
    }

    #[test]
    fn a_frame_is_cut_on_display_columns() {
        let wide = ConsumerStatus {
            name: "任务🚀\x1b[2J".into(),
            pending: 1,
            idle_ms: 0,
        };
        let frame = render("redis://h", &[group("g", false, 1, vec![wide])], 17, 10);
        let row = frame.lines().last().unwrap();
        assert_eq!(row, "g      任务🚀\\x1b", "{frame}");
        assert!(frame.lines().all(|l| width(l) <= 17), "{frame}");
    }
}
