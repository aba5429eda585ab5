//! `/dev/mail`, development only (mounted when `MAIL_DIR` is set): the
//! mails the notifications service wrote as `.eml` files, newest first, and
//! each one's text with its links, so that a new user can follow the pay
//! link of their "reservation confirmed" mail without a mail server.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use anyhow::Context as _;
use askama::Template;
use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;

use crate::error::PageError;
use crate::extract::Visitor;
use crate::routes::page;
use crate::startup::AppState;

/// The routes, or none when the page is not `enabled`.
pub(super) fn router(enabled: bool) -> Router<AppState> {
    if !enabled {
        return Router::new();
    }
    Router::new()
        .route("/dev/mail", get(list))
        .route("/dev/mail/{name}", get(show))
}

/// One mail, as the pages show it.
struct Mail {
    /// The file's name, which is the mail's address on the page.
    name: String,
    to: String,
    subject: String,
    date: String,
    text: String,
    /// The absolute links in the text, in order.
    links: Vec<String>,
}

#[derive(Template)]
#[template(path = "mail.html")]
struct MailPage {
    user: Option<crate::api::User>,
    mails: Vec<Mail>,
    shown: Option<Mail>,
}

async fn list(State(state): State<AppState>, visitor: Visitor) -> Result<Response, PageError> {
    let dir = mail_dir(&state)?;
    let mails = read_all(&dir).await?;
    page(
        StatusCode::OK,
        &MailPage {
            user: state.api.current_user(&visitor).await?,
            mails,
            shown: None,
        },
    )
}

async fn show(
    State(state): State<AppState>,
    visitor: Visitor,
    UrlPath(name): UrlPath<String>,
) -> Result<Response, PageError> {
    let dir = mail_dir(&state)?;
    if !is_mail_name(&name) {
        return Err(PageError::NotFound);
    }
    let Ok(bytes) = tokio::fs::read(dir.join(&name)).await else {
        return Err(PageError::NotFound);
    };
    let mail = parse(name, &bytes);
    page(
        StatusCode::OK,
        &MailPage {
            user: state.api.current_user(&visitor).await?,
            mails: Vec::new(),
            shown: Some(mail),
        },
    )
}

fn mail_dir(state: &AppState) -> Result<PathBuf, PageError> {
    state.mail_dir.clone().ok_or(PageError::NotFound)
}

/// A file the file transport writes: `<uuid>.eml`. Nothing else is read,
/// so a name can never leave the directory.
fn is_mail_name(name: &str) -> bool {
    name.strip_suffix(".eml").is_some_and(|stem| {
        !stem.is_empty() && stem.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    })
}

/// Every mail in `dir`, newest first; none when the directory does not
/// exist yet (no mail was sent).
async fn read_all(dir: &Path) -> Result<Vec<Mail>, PageError> {
    let mut entries = match tokio::fs::read_dir(dir).await {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(PageError::Internal(
                anyhow::Error::new(e).context("listing the mail directory"),
            ));
        }
    };
    let mut found: Vec<(SystemTime, Mail)> = Vec::new();
    while let Some(entry) = entries
        .next_entry()
        .await
        .context("reading the mail directory")
        .map_err(PageError::Internal)?
    {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_mail_name(&name) {
            continue;
        }
        let modified = entry
            .metadata()
            .await
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        if let Ok(bytes) = tokio::fs::read(entry.path()).await {
            found.push((modified, parse(name, &bytes)));
        }
    }
    found.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
    Ok(found.into_iter().map(|(_, mail)| mail).collect())
}

fn parse(name: String, bytes: &[u8]) -> Mail {
    let parsed = mail_parser::MessageParser::default().parse(bytes);
    let header = |f: fn(&mail_parser::Message<'_>) -> Option<String>| {
        parsed.as_ref().and_then(f).unwrap_or_default()
    };
    let text = header(|m| m.body_text(0).map(|t| t.into_owned()));
    let links = text
        .split_whitespace()
        .filter(|w| w.starts_with("http://") || w.starts_with("https://"))
        .map(str::to_string)
        .collect();
    Mail {
        name,
        to: header(|m| {
            m.to()
                .and_then(|a| a.first())
                .and_then(|a| a.address())
                .map(str::to_string)
        }),
        subject: header(|m| m.subject().map(str::to_string)),
        date: header(|m| m.date().map(|d| d.to_rfc3339())),
        text,
        links,
    }
}

#[cfg(test)]
mod tests {
    use super::is_mail_name;

    #[test]
    fn only_eml_files_of_the_transport_are_mail_names() {
        assert!(is_mail_name("0193e0a4-5b6c-7d8e-9f00-112233445566.eml"));
        assert!(!is_mail_name("../secret.eml"));
        assert!(!is_mail_name(".eml"));
        assert!(!is_mail_name("notes.txt"));
    }
}
