//! Which files a `[[logs]]` table covers: `paths` globs minus `exclude` globs, found by
//! walking only below each pattern's literal directory prefix.

use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// The include and exclude globs of one `[[logs]]` table.
pub(crate) struct PathMatcher {
    patterns: Vec<String>,
    include: GlobSet,
    exclude: GlobSet,
}

impl PathMatcher {
    /// Builds the matcher; the globs must have been validated.
    pub(crate) fn new(paths: &[String], exclude: &[String]) -> PathMatcher {
        PathMatcher {
            patterns: paths.to_vec(),
            include: glob_set(paths),
            exclude: glob_set(exclude),
        }
    }

    /// Tells whether `path` is covered.
    pub(crate) fn matches(&self, path: &Path) -> bool {
        self.include.is_match(path) && !self.exclude.is_match(path)
    }

    /// The directories to watch for new files, with whether to watch below them.
    pub(crate) fn watch_dirs(&self) -> Vec<(PathBuf, bool)> {
        let mut dirs: Vec<(PathBuf, bool)> = self
            .patterns
            .iter()
            .map(|pattern| {
                let (base, depth) = literal_base(pattern);
                (base, depth > 1)
            })
            .collect();
        dirs.sort();
        dirs.dedup();
        dirs
    }

    /// Lists the regular files covered now.
    pub(crate) fn list_files(&self) -> Vec<PathBuf> {
        let mut found = Vec::new();
        for pattern in &self.patterns {
            let (base, depth) = literal_base(pattern);
            self.walk(&base, depth, &mut found);
        }
        found.sort();
        found.dedup();
        found
    }

    fn walk(&self, dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
        if depth == 0 {
            return;
        }
        let listing_dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let Ok(entries) = std::fs::read_dir(listing_dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = if dir.as_os_str().is_empty() {
                PathBuf::from(entry.file_name())
            } else {
                entry.path()
            };
            let Ok(file_type) = entry.file_type() else {
                continue;
            };
            if file_type.is_dir() {
                self.walk(&path, depth - 1, found);
            } else if self.matches(&path) && std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                found.push(path);
            }
        }
    }
}

fn glob_set(patterns: &[String]) -> GlobSet {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .expect("globs are validated when the configuration is loaded");
        builder.add(glob);
    }
    builder.build().expect("a set of valid globs builds")
}

/// The directory before a pattern's first glob character, and how deep below it matches go.
fn literal_base(pattern: &str) -> (PathBuf, usize) {
    let mut base = PathBuf::new();
    let mut components = Path::new(pattern).components().peekable();
    while let Some(component) = components.peek() {
        let text = component.as_os_str().to_string_lossy();
        if text.contains(['*', '?', '[', '{']) {
            break;
        }
        base.push(component);
        components.next();
    }
    let rest: Vec<_> = components.collect();
    if rest.is_empty() {
        // No glob characters: the pattern is one file; walk its directory.
        let parent = base.parent().map(Path::to_path_buf).unwrap_or_default();
        return (parent, 1);
    }
    let depth = if pattern.contains("**") {
        usize::MAX
    } else {
        rest.len()
    };
    (base, depth)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_base_stops_at_the_first_glob_component() {
        assert_eq!(
            literal_base("/var/log/dask/*.log"),
            (PathBuf::from("/var/log/dask"), 1)
        );
        assert_eq!(
            literal_base("/var/log/*/w.log"),
            (PathBuf::from("/var/log"), 2)
        );
        assert_eq!(
            literal_base("/var/log/**/*.log").0,
            PathBuf::from("/var/log")
        );
        assert_eq!(
            literal_base("/var/log/one.log"),
            (PathBuf::from("/var/log"), 1)
        );
    }

    #[test]
    fn lists_matching_files_without_the_excluded() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        for name in ["a.log", "b.log", "c.log.gz", "old.log", "sub/d.log"] {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().expect("parent"))?;
            std::fs::write(path, "x\n")?;
        }
        let root = dir.path().display();
        let matcher = PathMatcher::new(
            &[format!("{root}/*.log*"), format!("{root}/**/d.log")],
            &[format!("{root}/*.gz"), format!("{root}/old.*")],
        );
        let names: Vec<String> = matcher
            .list_files()
            .iter()
            .map(|path| {
                path.strip_prefix(dir.path())
                    .expect("inside")
                    .display()
                    .to_string()
            })
            .collect();
        assert_eq!(names, ["a.log", "b.log", "sub/d.log"]);
        Ok(())
    }
}
