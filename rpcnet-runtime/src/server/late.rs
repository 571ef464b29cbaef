//! Methods added after a server is bound ([`BoundServer::add_service`](super::BoundServer::add_service)):
//! an append-only list, consulted only when a method is not in the table fixed at bind
//! time, so the lookup of the methods known at bind time is unchanged.

use std::sync::{Arc, OnceLock};

use super::state::Method;

/// An append-only list of methods; readers borrow entries without locking.
#[derive(Debug, Default)]
pub(super) struct LateMethods {
    head: OnceLock<Box<Entry>>,
}

#[derive(Debug)]
struct Entry {
    method: Method,
    next: OnceLock<Box<Entry>>,
}

impl LateMethods {
    /// The method named `name`, if one was added.
    pub(super) fn get(&self, name: &[u8]) -> Option<&Method> {
        let mut slot = &self.head;
        while let Some(entry) = slot.get() {
            if entry.method.name.as_bytes() == name {
                return Some(&entry.method);
            }
            slot = &entry.next;
        }
        None
    }

    /// Appends a method. Returns it back if a method of that name is already listed.
    pub(super) fn push(&self, method: Method) -> Result<(), Arc<str>> {
        let mut new = Box::new(Entry {
            method,
            next: OnceLock::new(),
        });
        let mut slot = &self.head;
        loop {
            if let Some(entry) = slot.get() {
                if entry.method.name == new.method.name {
                    return Err(new.method.name);
                }
                slot = &entry.next;
                continue;
            }
            match slot.set(new) {
                Ok(()) => return Ok(()),
                // Another thread appended here first: keep walking from its entry.
                Err(back) => new = back,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler::MethodHandler;
    use bytes::Bytes;

    fn method(name: impl Into<Arc<str>>) -> Method {
        Method {
            name: name.into(),
            handler: MethodHandler::raw_unary(|_, request: Bytes| async move { Ok(request) }),
            metrics: None,
        }
    }

    #[test]
    fn late_methods_are_found_by_name_and_refuse_duplicates() {
        let methods = LateMethods::default();
        assert!(methods.get(b"a.x").is_none());
        methods.push(method("a.x")).expect("first");
        methods.push(method("a.y")).expect("second");
        assert_eq!(methods.get(b"a.x").map(|m| &*m.name), Some("a.x"));
        assert_eq!(methods.get(b"a.y").map(|m| &*m.name), Some("a.y"));
        assert!(methods.get(b"a.z").is_none());
        assert!(methods.push(method("a.y")).is_err());
    }

    #[test]
    fn concurrent_pushes_all_land() {
        let methods = Arc::new(LateMethods::default());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let methods = Arc::clone(&methods);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        methods.push(method(format!("s{t}.m{i}"))).expect("unique");
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("no panic");
        }
        for t in 0..8 {
            for i in 0..50 {
                assert!(methods.get(format!("s{t}.m{i}").as_bytes()).is_some());
            }
        }
    }
}
