//! Serket's module framework (`serket/module.py`): every module has one outgoing forward
//! message and one incoming backward slot; `connect` names the children whose forward messages
//! it observes (in order: modalities, and the targets of `send_backward_msgs`); `update` reads
//! them, learns, and pushes messages. There is no scheduler: the user calls `update` in order.

use super::data::Matrix;
use anyhow::{bail, Result};
use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// The graph under construction: numbers modules in construction order (`module%03d_<name>`,
/// Observations included, as upstream's class-level counter) and hands each module its output
/// folder under `root` and its share of the one seed.
pub struct Serket {
    root: PathBuf,
    seed: u64,
    counter: Cell<usize>,
}

impl Serket {
    /// A graph writing under `root`, with every random draw derived from `seed`.
    pub fn new(root: impl Into<PathBuf>, seed: u64) -> Self {
        Self {
            root: root.into(),
            seed,
            counter: Cell::new(0),
        }
    }

    /// Creates the next node, named `module%03d_<name>`.
    pub fn node(&self, name: &str) -> Rc<Node> {
        let index = self.counter.get();
        self.counter.set(index + 1);
        let name = format!("module{index:03}_{name}");
        Rc::new(Node {
            dir: self.root.join(&name),
            name,
            // Distinct, reproducible seeds per module: adding a module never shifts another's.
            seed: self
                .seed
                .wrapping_add((index as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D)),
            forward: RefCell::new(None),
            backward: RefCell::new(None),
            children: RefCell::new(Vec::new()),
        })
    }

    /// The output root.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// Message slots and wiring shared by every module.
pub struct Node {
    name: String,
    dir: PathBuf,
    seed: u64,
    forward: RefCell<Option<Rc<Matrix>>>,
    backward: RefCell<Option<Matrix>>,
    children: RefCell<Vec<Rc<Node>>>,
}

impl Node {
    /// `module%03d_<name>`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This module's output folder (`<root>/module%03d_<name>`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// This module's seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Sets the outgoing forward message.
    pub fn set_forward_msg(&self, m: Matrix) {
        *self.forward.borrow_mut() = Some(Rc::new(m));
    }

    /// The outgoing forward message, if this module has produced one.
    pub fn get_forward_msg(&self) -> Option<Rc<Matrix>> {
        self.forward.borrow().clone()
    }

    /// The last message a parent pushed here (one round stale), if any.
    pub fn get_backward_msg(&self) -> Option<Matrix> {
        self.backward.borrow().clone()
    }

    /// Stores a message from a parent; the last writer wins.
    pub fn set_backward_msg(&self, m: Matrix) {
        *self.backward.borrow_mut() = Some(m);
    }

    /// Replaces the children (order = modalities = backward-message targets).
    pub fn connect_nodes(&self, children: Vec<Rc<Node>>) {
        *self.children.borrow_mut() = children;
    }

    /// Names of the children, in order.
    pub fn child_names(&self) -> Vec<String> {
        self.children
            .borrow()
            .iter()
            .map(|c| c.name.clone())
            .collect()
    }

    /// The children's current forward messages, in connect order. Errors when a child has not
    /// produced one yet (update order wrong) or nothing is connected.
    pub fn get_observations(&self) -> Result<Vec<Rc<Matrix>>> {
        let children = self.children.borrow();
        if children.is_empty() {
            bail!(
                "{} observes nothing: connect it to its inputs first",
                self.name
            );
        }
        children
            .iter()
            .map(|c| match c.get_forward_msg() {
                Some(m) => Ok(m),
                None => bail!(
                    "{} reads the forward message of {}, which has none yet: update {} first",
                    self.name,
                    c.name,
                    c.name
                ),
            })
            .collect()
    }

    /// Pushes `msgs[i]` into child `i`'s backward slot.
    pub fn send_backward_msgs(&self, msgs: Vec<Matrix>) -> Result<()> {
        let children = self.children.borrow();
        if msgs.len() < children.len() {
            bail!(
                "{} has {} children but sent {} backward messages",
                self.name,
                children.len(),
                msgs.len()
            );
        }
        for (c, m) in children.iter().zip(msgs) {
            c.set_backward_msg(m);
        }
        Ok(())
    }

    /// The folder of update number `round` (`<dir>/%03d`): per-round history, as upstream H.
    pub fn round_dir(&self, round: usize) -> PathBuf {
        self.dir.join(format!("{round:03}"))
    }

    /// Writes `text` as `<dir>/<file>` (the tutorial's layout, overwritten each round) and as
    /// `<dir>/%03d/<file>` (the per-round history).
    pub fn save(&self, round: usize, file: &str, text: &str) -> Result<()> {
        crate::atomic::write_str(&self.round_dir(round).join(file), text)?;
        crate::atomic::write_str(&self.dir.join(file), text)
    }
}

/// A Serket module.
pub trait Module {
    /// Message slots and wiring.
    fn node(&self) -> &Rc<Node>;

    /// Learns from the children's forward messages and the backward message, then sends.
    fn update(&mut self) -> Result<()>;

    /// Sets the children this module observes, in order (replaces earlier ones).
    fn connect(&self, children: &[&dyn Module]) {
        self.node()
            .connect_nodes(children.iter().map(|c| c.node().clone()).collect());
    }

    /// `module%03d_<name>`.
    fn name(&self) -> &str {
        self.node().name()
    }
}

/// Data as a module: its forward message is the data; backward messages are dropped.
pub struct Observation {
    node: Rc<Node>,
}

impl Observation {
    /// `srk.Observation(data)`: takes a number but never writes a folder.
    pub fn new(srk: &Serket, data: Matrix) -> Self {
        let node = srk.node("obs");
        node.set_forward_msg(data);
        Self { node }
    }
}

impl Module for Observation {
    fn node(&self) -> &Rc<Node> {
        &self.node
    }

    fn update(&mut self) -> Result<()> {
        Ok(())
    }
}
