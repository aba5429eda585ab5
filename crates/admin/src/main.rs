//! `buytickets-admin`: the operator's tool for the dead letters of a
//! deployment (see the `admin` library for what a replay does).
//!
//! ```text
//! buytickets-admin dead-letters list [--subject S] [--service S]
//! buytickets-admin dead-letters show <SEQ>
//! buytickets-admin dead-letters replay (<SEQ> | --subject S [--service S])
//! buytickets-admin dead-letters discard (<SEQ> | --subject S [--service S])
//! ```

use std::process::ExitCode;

use admin::{DeadLetter, DeadLetters, Filter, format_age};
use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use common::bus::Bus;

#[derive(Parser)]
#[command(
    name = "buytickets-admin",
    version,
    about = "Operations on a buytickets deployment"
)]
struct Cli {
    /// The deployment's NATS server.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// The deployment's subject and stream prefix (empty in production).
    #[arg(long, env = "NATS_PREFIX", default_value = "")]
    nats_prefix: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Events the services gave up on.
    #[command(subcommand)]
    DeadLetters(DeadLetterCommand),
}

#[derive(Subcommand)]
enum DeadLetterCommand {
    /// Lists dead letters: sequence, age, service, subject, attempts, reason.
    List {
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Shows one dead letter with its payload.
    Show {
        /// Its sequence, as `list` shows it.
        sequence: u64,
    },
    /// Publishes dead letters again on their subject under a new message
    /// id, then removes them. One by sequence, or all of a subject.
    Replay(Selection),
    /// Removes dead letters without replaying them.
    Discard(Selection),
}

#[derive(Args)]
struct FilterArgs {
    /// Only those of this subject, e.g. `ticket.updated`.
    #[arg(long)]
    subject: Option<String>,
    /// Only those this service gave up on, e.g. `orders`.
    #[arg(long)]
    service: Option<String>,
}

impl From<FilterArgs> for Filter {
    fn from(args: FilterArgs) -> Filter {
        Filter {
            subject: args.subject,
            service: args.service,
        }
    }
}

#[derive(Args)]
struct Selection {
    /// One dead letter, by sequence.
    #[arg(required_unless_present = "subject", conflicts_with = "subject")]
    sequence: Option<u64>,
    #[command(flatten)]
    filter: FilterArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ran = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|runtime| runtime.block_on(run(cli)));
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let client = async_nats::connect(cli.nats_url.as_str())
        .await
        .with_context(|| format!("connecting to NATS at {}", cli.nats_url))?;
    let letters = DeadLetters::open(Bus::with_client(client, &cli.nats_prefix)).await?;
    let Command::DeadLetters(command) = cli.command;
    match command {
        DeadLetterCommand::List { filter } => list(&letters.list(&filter.into()).await?),
        DeadLetterCommand::Show { sequence } => show(&letters.get(sequence).await?),
        DeadLetterCommand::Replay(selection) => {
            for letter in selected(&letters, selection).await? {
                let id = letters.replay(&letter).await?;
                println!(
                    "replayed #{} on {} as message {id}",
                    letter.sequence, letter.subject
                );
            }
        }
        DeadLetterCommand::Discard(selection) => {
            for letter in selected(&letters, selection).await? {
                letters.discard(letter.sequence).await?;
                println!("discarded #{} ({})", letter.sequence, letter.subject);
            }
        }
    }
    Ok(())
}

async fn selected(letters: &DeadLetters, selection: Selection) -> anyhow::Result<Vec<DeadLetter>> {
    match selection.sequence {
        Some(sequence) => Ok(vec![letters.get(sequence).await?]),
        None => letters.list(&selection.filter.into()).await,
    }
}

fn list(letters: &[DeadLetter]) {
    let now = chrono::Utc::now();
    println!(
        "{:>6}  {:>7}  {:<14} {:<22} {:>8}  REASON",
        "SEQ", "AGE", "SERVICE", "SUBJECT", "ATTEMPTS"
    );
    for letter in letters {
        println!(
            "{:>6}  {:>7}  {:<14} {:<22} {:>8}  {}",
            letter.sequence,
            format_age(letter.age(now)),
            letter.service,
            letter.subject,
            letter
                .attempts
                .map_or_else(|| "?".to_string(), |a| a.to_string()),
            letter.reason
        );
    }
    println!("{} dead letter(s)", letters.len());
}

fn show(letter: &DeadLetter) {
    let payload = serde_json::from_slice::<serde_json::Value>(&letter.payload)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| String::from_utf8_lossy(&letter.payload).into_owned());
    println!("sequence:  {}", letter.sequence);
    println!("service:   {}", letter.service);
    println!("subject:   {}", letter.subject);
    println!(
        "event id:  {}",
        letter.event_id.map_or("-".to_string(), |id| id.to_string())
    );
    println!(
        "attempts:  {}",
        letter.attempts.map_or("?".to_string(), |a| a.to_string())
    );
    println!(
        "stored at: {} ({} ago)",
        letter.stored_at.to_rfc3339(),
        format_age(letter.age(chrono::Utc::now()))
    );
    println!("reason:    {}", letter.reason);
    println!("payload:\n{payload}");
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn replay_and_discard_take_a_sequence_or_a_subject_but_not_both() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(["buytickets-admin", "dead-letters"].iter().chain(args))
        };
        assert!(parse(&["replay", "3"]).is_ok());
        assert!(parse(&["discard", "--subject", "ticket.updated"]).is_ok());
        assert!(parse(&["replay"]).is_err(), "nothing selected");
        assert!(parse(&["replay", "3", "--subject", "ticket.updated"]).is_err());
    }
}
