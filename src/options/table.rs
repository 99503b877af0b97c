//! The table preset's own options (`gmvae table`), declared like [`super::Options`]' rows, and
//! what loading a table needs of them ([`Spec`]).

use super::{Layer, Options};
use crate::data::reader::{Header, TextRules};
use crate::data::scale::{LikelihoodChoice, Scale};
use crate::data::table::{Fitted, Spec};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

super::decl::declare_options! {
    /// The table preset's own settings (part of [`Options`]), one row per setting as in
    /// [`Options`]' table.
    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    pub struct TableOptions;
    /// The table preset's flags (`gmvae table --help`).
    pub struct TableArgs;
    ids TableOpt, given TableGiven, layers Layer;
    fields {
        /// Column holding class labels (used only for scores; never trained on): a header name or a
        /// 0-based index. For safetensors, the name of a 1-D labels tensor.
        label_column: Option<String> = { main: None }
            => 0 some String [.value_name("NAME|INDEX")];
        /// Safetensors: the 2-D data tensor (default: the file's only 2-D tensor).
        tensor: Option<String> = { main: None } => 10 some String;
        /// Scaling fitted on the training rows and stored with the model [default: auto = none when
        /// every value is in [0,1], minmax when every value is a non-negative integer, else
        /// standardize].
        scale: Scale = { main: Scale::Auto } => 20 set Scale;
        /// Likelihood p(y|x) [default: auto = bernoulli when every scaled value is in [0,1], else
        /// gaussian].
        likelihood: LikelihoodChoice = { main: LikelihoodChoice::Auto } => 30 set LikelihoodChoice;
        /// Share of rows held out (seeded by --seed) for the test scores.
        // 0: evaluate on the training rows. Negative numbers reach validate's message.
        test_fraction: f64 = { main: 0.0 } => 40 set f64 [.allow_negative_numbers(true)];
        /// Text files: whether the first line is a header: auto = when it names every feature
        /// column (or holds the --label-column name), yes, or no.
        #[serde(default, skip_serializing_if = "is_auto")]
        header: Header = { main: Header::Auto } => 50 set Header;
        /// Text files: lines starting with this are comments, skipped and counted in the log
        /// ('' = none).
        #[serde(default = "hash", skip_serializing_if = "is_hash")]
        comment: String = { main: hash() } => 60 set String [.value_name("PREFIX")];
        /// What training found out about the table.
        fitted: Option<Fitted> = { main: None };
    }
    flags {}
}

// opts.json leaves the default rules out, so runs that use them keep the file they had.
fn is_auto(h: &Header) -> bool {
    *h == Header::Auto
}
fn hash() -> String {
    "#".into()
}
fn is_hash(c: &str) -> bool {
    c == "#"
}

impl Default for TableOptions {
    fn default() -> Self {
        Self::main_layer()
    }
}

impl TableOptions {
    pub fn validate(&self) -> Result<()> {
        crate::data::table::check_test_fraction(self.test_fraction)
    }
}

impl TableOptions {
    /// How a text table is read.
    pub fn text_rules(&self) -> TextRules {
        TextRules {
            header: self.header,
            comment: self.comment.clone(),
        }
    }
}

/// The text-table flags of `predict` and `serket --data` (the table preset has them as option
/// rows: `--header`, `--comment`).
#[derive(Debug, Clone, clap::Args)]
pub struct TextFlags {
    /// Text files: whether the first line is a header: auto = when it names every feature
    /// column (or holds the --label-column name), yes, or no.
    #[arg(long, value_enum, default_value_t = Header::Auto)]
    pub header: Header,
    /// Text files: lines starting with this are comments, skipped and counted in the log
    /// ('' = none).
    #[arg(long, value_name = "PREFIX", default_value = "#")]
    pub comment: String,
}

impl TextFlags {
    pub fn rules(&self) -> TextRules {
        TextRules {
            header: self.header,
            comment: self.comment.clone(),
        }
    }
}

impl TableArgs {
    /// Puts these flags on top of `o.table` (`TrainArgs::resolve` validates the result).
    pub fn apply(&self, o: &mut Options) {
        let t = o.table.get_or_insert_with(TableOptions::default);
        t.set_given(self.given(), |_| true);
    }
}

impl Options {
    /// What loading the table needs: `--data`, the table's settings, the data's seed and
    /// `--train-size`.
    pub fn table_spec(&self) -> Result<Spec<'_>> {
        let path = self
            .data
            .as_deref()
            .context("the table preset needs --data FILE")?;
        self.table_spec_at(path)
    }

    /// [`Options::table_spec`] for rows that `path` names (the caller's rows in memory).
    pub fn table_spec_at<'a>(&'a self, path: &'a std::path::Path) -> Result<Spec<'a>> {
        let t = self.table.as_ref().context("table options missing")?;
        Ok(Spec {
            path,
            label_column: t.label_column.as_deref(),
            tensor: t.tensor.as_deref(),
            text: t.text_rules(),
            scale: t.scale,
            likelihood: t.likelihood,
            test_fraction: t.test_fraction,
            seed: self.seed_of_data(),
            train_size: self.train_size,
        })
    }

    /// The options a run records in opts.json and trains with: these plus what loading the
    /// table settled (the scaling in `table.fitted`, the likelihood as `continuous`), so that
    /// `predict`, `export` and `--resume` read what training used. Checks what depends on the
    /// table: the model's size on its width, and that `--binarize` meets Bernoulli data.
    pub fn with_fitted(&self, fitted: Fitted) -> Result<Options> {
        self.check_model_size(fitted.scaler.shift.len().max(1))?;
        let mut o = self.clone();
        o.continuous = fitted.likelihood == LikelihoodChoice::Gaussian;
        if o.binarize && o.continuous {
            bail!("--binarize draws Bernoulli data for the Bernoulli likelihood; it cannot be combined with --continuous 1");
        }
        o.table.get_or_insert_with(Default::default).fitted = Some(fitted);
        Ok(o)
    }
}
