//! `portcullis import kubesphere FILE...`: moves KubeSphere users (bcrypt hashes, emails, groups,
//! states, identity links) and optionally their login records into Portcullis' store, so nobody
//! has to reset a password.
//!
//! Two phases. First every file is read and checked, and the objects are checked against each
//! other (a name, an email or an identity in two users); any problem stops the import before the
//! database is even opened, with every problem listed by file and object. Then the objects are
//! written, a few at a time, each one whole or not at all ([`apply`]). A second run finds
//! everything unchanged and writes nothing; `--dry-run` reports what a run would do.

mod apply;
mod parse;
mod progress;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use anyhow::{Result, bail};
use futures_util::StreamExt;

use crate::cli::ImportCommand;
use crate::providers::Wiring;
use crate::setup;
use apply::{Importer, Outcome};
use parse::{Item, Kind, KsLoginRecord, KsUser, Origin};
use progress::Progress;

/// Users written at once: enough to hide database round trips, few enough for SQLite's writer.
const CONCURRENCY: usize = 8;

/// Runs an `import` subcommand.
pub async fn run(cmd: ImportCommand, wiring: &Wiring) -> Result<()> {
    let ImportCommand::Kubesphere {
        common,
        files,
        dry_run,
        overwrite,
    } = cmd;
    let (users, records, read_skips) = read_all(&files)?;

    let config = setup::load_config(&common, None, &wiring.registry(&common)?)?;
    setup::init_logging(config.portcullis.log_format);
    let configured: HashSet<&str> = config
        .authentication
        .oauth_options
        .identity_providers
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    let mut unknown: Vec<&str> = users
        .iter()
        .flat_map(|u| u.links.iter().map(|(p, _)| p.as_str()))
        .filter(|p| !configured.contains(p))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    unknown.sort_unstable();
    for p in unknown {
        eprintln!(
            "warning: links to identity provider {p:?}, which is not configured, are imported; \
             they take effect once a provider of that name is"
        );
    }

    let engine = setup::open_engine(&config).await?;
    let importer = Arc::new(Importer {
        engine,
        dry_run,
        overwrite,
    });
    let progress = Arc::new(Progress::new(
        if dry_run { "checking" } else { "importing" },
        users.len() + records.len(),
    ));

    let user_outcomes: Vec<(usize, Outcome)> = futures_util::stream::iter(users.iter().enumerate())
        .map(|(i, u)| {
            let importer = importer.clone();
            let progress = progress.clone();
            async move {
                let outcome = importer.user(u).await;
                progress.inc();
                outcome.map(|o| (i, o))
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    let mut user_outcomes = user_outcomes;
    user_outcomes.sort_by_key(|(i, _)| *i);

    // Users of this export that are (or, in a dry run, would be) in Portcullis.
    let present: HashSet<&str> = user_outcomes
        .iter()
        .filter(|(_, o)| {
            matches!(
                o,
                Outcome::Imported | Outcome::Updated(_) | Outcome::Unchanged
            )
        })
        .map(|(i, _)| users[*i].name.as_str())
        .collect();
    let mut by_user: BTreeMap<&str, Vec<&KsLoginRecord>> = BTreeMap::new();
    for r in &records {
        by_user.entry(r.user.as_str()).or_default().push(r);
    }
    let mut record_outcomes: Vec<(&KsLoginRecord, Outcome)> = Vec::with_capacity(records.len());
    for (user, recs) in by_user {
        let outcomes = importer
            .records(user, &recs, present.contains(user))
            .await?;
        for (r, o) in recs.into_iter().zip(outcomes) {
            progress.inc();
            record_outcomes.push((r, o));
        }
    }
    importer.engine.store().close().await;

    let mut failed = Vec::new();
    let mut skipped = Vec::new();
    let mut user_tally = Tally::default();
    let mut record_tally = Tally::default();
    let mut others = 0;
    for (kind, origin, why) in read_skips {
        match kind {
            Kind::User => user_tally.skipped += 1,
            Kind::Record => record_tally.skipped += 1,
            Kind::Other => others += 1,
        }
        skipped.push((origin, why));
    }
    for (i, o) in &user_outcomes {
        let origin = &users[*i].origin;
        user_tally.add(o, origin, &mut skipped, &mut failed);
    }
    for (r, o) in &record_outcomes {
        record_tally.add(o, &r.origin, &mut skipped, &mut failed);
    }

    let would = if dry_run { "would be " } else { "" };
    if dry_run {
        println!("dry run: nothing was written");
    }
    println!(
        "users: {} {would}imported, {} {would}updated, {} unchanged, {} skipped, {} failed",
        user_tally.imported,
        user_tally.updated,
        user_tally.unchanged,
        user_tally.skipped,
        user_tally.failed
    );
    if record_tally.imported + record_tally.unchanged + record_tally.skipped > 0 {
        println!(
            "login records: {} {would}imported, {} unchanged, {} skipped",
            record_tally.imported, record_tally.unchanged, record_tally.skipped
        );
    }
    if others > 0 {
        println!("other objects: {others} skipped");
    }
    for line in &user_tally.updated_lines {
        println!("{would}updated {line}");
    }
    if !skipped.is_empty() {
        println!("skipped:");
        for (origin, why) in &skipped {
            println!("  {origin}: {why}");
        }
    }
    if user_tally.imported + user_tally.updated + record_tally.imported == 0 && failed.is_empty() {
        println!("nothing to change: Portcullis already holds everything in the export");
    }
    if !failed.is_empty() {
        for (origin, why) in &failed {
            eprintln!("error: {origin}: {why}");
        }
        bail!(
            "{} object(s) could not be imported (nothing was written for them)",
            failed.len()
        );
    }
    Ok(())
}

#[derive(Default)]
struct Tally {
    imported: usize,
    updated: usize,
    unchanged: usize,
    skipped: usize,
    failed: usize,
    updated_lines: Vec<String>,
}

impl Tally {
    fn add(
        &mut self,
        o: &Outcome,
        origin: &Origin,
        skipped: &mut Vec<(Origin, String)>,
        failed: &mut Vec<(Origin, String)>,
    ) {
        match o {
            Outcome::Imported => self.imported += 1,
            Outcome::Updated(fields) => {
                self.updated += 1;
                self.updated_lines
                    .push(format!("{origin}: {}", fields.join(", ")));
            }
            Outcome::Unchanged => self.unchanged += 1,
            Outcome::Skipped(why) => {
                self.skipped += 1;
                skipped.push((origin.clone(), why.clone()));
            }
            Outcome::Failed(why) => {
                self.failed += 1;
                failed.push((origin.clone(), why.clone()));
            }
        }
    }
}

type ReadResult = (Vec<KsUser>, Vec<KsLoginRecord>, Vec<(Kind, Origin, String)>);

/// Reads and checks every file; any problem anywhere fails the whole import, listing them all.
fn read_all(files: &[std::path::PathBuf]) -> Result<ReadResult> {
    let mut users: Vec<KsUser> = Vec::new();
    let mut records: Vec<KsLoginRecord> = Vec::new();
    let mut skipped = Vec::new();
    let mut errors = Vec::new();
    for file in files {
        match parse::read_file(file) {
            Ok(items) => {
                for item in items {
                    match item {
                        Item::User(u) => users.push(*u),
                        Item::Record(r) => records.push(*r),
                        Item::Skipped(kind, origin, why) => skipped.push((kind, origin, why)),
                    }
                }
            }
            Err(e) => errors.extend(e),
        }
    }
    let mut names: HashMap<&str, &Origin> = HashMap::new();
    let mut emails: HashMap<String, &Origin> = HashMap::new();
    let mut links: HashMap<(&str, &str), &Origin> = HashMap::new();
    for u in &users {
        if let Some(first) = names.insert(&u.name, &u.origin) {
            errors.push(format!(
                "{}: user {:?} is also defined at {first}",
                u.origin, u.name
            ));
        }
        if let Some(e) = &u.email
            && let Some(first) = emails.insert(e.to_lowercase(), &u.origin)
        {
            errors.push(format!("{}: email {e:?} is also used at {first}", u.origin));
        }
        for (p, id) in &u.links {
            if let Some(first) = links.insert((p.as_str(), id.as_str()), &u.origin) {
                errors.push(format!(
                    "{}: identity {p}/{id} is also linked at {first}",
                    u.origin
                ));
            }
        }
    }
    let mut ids = HashSet::new();
    records.retain(|r| {
        let fresh = ids.insert(r.id.clone());
        if !fresh {
            skipped.push((
                Kind::Record,
                r.origin.clone(),
                "the same login record appears earlier".into(),
            ));
        }
        fresh
    });
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("error: {e}");
        }
        bail!(
            "{} problem(s) in the input; nothing was imported",
            errors.len()
        );
    }
    Ok((users, records, skipped))
}
