//! One Deployment's sync, as the real controller's `syncDeployment`:
//! revisions, scaling, the rollout strategies, cleanup and status.

use super::*;

/// One deployment's sync, mirroring `syncDeployment` in simplified form.
pub(super) struct DeploymentSync<'a> {
    d: &'a Value,
    clock: &'a Clock,
    kind_pods: &'a HashMap<&'a str, Vec<&'a Value>>,
    replicas: i32,
    recreate: bool,
    max_surge: i32,
    max_unavailable: i32,
    progress_deadline: Option<i64>,
    rss: Vec<RsView>,
    new_rs: Option<usize>,
    /// The stored status (what progress is measured against).
    stored: DStatus,
    /// The status being built (conditions set along the way).
    status: DStatus,
    actions: Vec<Action>,
}

impl<'a> DeploymentSync<'a> {
    pub(super) fn new(
        d: &'a Value,
        owned: Vec<&Value>,
        kind_pods: &'a HashMap<&'a str, Vec<&'a Value>>,
        clock: &'a Clock,
    ) -> Self {
        let spec = &d["spec"];
        let replicas = int32(&spec["replicas"], 1);
        let recreate = str_at(spec, &["strategy", "type"]) == "Recreate";
        let rolling = &spec["strategy"]["rollingUpdate"];
        let (max_surge, max_unavailable) = if recreate {
            (0, 0)
        } else {
            resolve_fenceposts(&rolling["maxSurge"], &rolling["maxUnavailable"], replicas)
        };
        let progress_deadline = match int(&spec["progressDeadlineSeconds"]) {
            None => Some(600),
            Some(s) if s == i64::from(i32::MAX) => None,
            Some(s) => Some(s),
        };
        let stored = DStatus::parse(&d["status"]);
        let mut rss: Vec<RsView> = owned.into_iter().map(RsView::new).collect();
        rss.sort_by(by_creation);
        DeploymentSync {
            d,
            clock,
            kind_pods,
            replicas,
            recreate,
            max_surge,
            max_unavailable,
            progress_deadline,
            rss,
            new_rs: None,
            status: stored.clone(),
            stored,
            actions: Vec::new(),
        }
    }

    pub(super) fn ns(&self) -> &str {
        namespace(self.d)
    }

    pub(super) fn name(&self) -> &str {
        name(self.d)
    }

    pub(super) fn event(&mut self, type_: &'static str, reason: &str, message: String) {
        self.actions.push(Action::Event(event(
            Kind::Deployment,
            self.d,
            type_,
            reason,
            message,
            DEPLOYMENT_CONTROLLER,
        )));
    }

    /// Go's `deploymentutil.MaxUnavailable`.
    pub(super) fn max_unavailable_for_status(&self) -> i32 {
        if self.recreate || self.replicas == 0 {
            0
        } else {
            self.max_unavailable.min(self.replicas)
        }
    }

    pub(super) fn old_indices(&self) -> Vec<usize> {
        (0..self.rss.len())
            .filter(|i| Some(*i) != self.new_rs)
            .collect()
    }

    pub(super) fn sum(&self, idx: &[usize], f: impl Fn(&RsView) -> i32) -> i32 {
        idx.iter().map(|i| f(&self.rss[*i])).sum()
    }

    pub(super) fn all_indices(&self) -> Vec<usize> {
        (0..self.rss.len()).collect()
    }

    /// Go's `getAllReplicaSetsAndSyncRevision`: finds (or creates) the new
    /// ReplicaSet and keeps revisions in step.
    pub(super) fn sync_revision(&mut self, create: bool) {
        let template = &self.d["spec"]["template"];
        self.new_rs = self
            .rss
            .iter()
            .position(|rs| templates_equal(&rs.obj["spec"]["template"], template));
        let max_old = self
            .old_indices()
            .iter()
            .map(|i| self.rss[*i].revision)
            .max()
            .unwrap_or(0);
        let new_revision = max_old + 1;
        if let Some(i) = self.new_rs {
            let mut annotations = Map::new();
            let rs = &self.rss[i];
            for (k, v) in copied_annotations(self.d) {
                if rs.obj["metadata"]["annotations"][&k] != v {
                    annotations.insert(k, v);
                }
            }
            if rs.revision < new_revision {
                annotations.insert(REVISION_ANNOTATION.into(), json!(new_revision.to_string()));
                if rs.revision > 0 {
                    let history = match annotation(&rs.obj, REVISION_HISTORY_ANNOTATION) {
                        Some(h) if !h.is_empty() => format!("{h},{}", rs.revision),
                        _ => rs.revision.to_string(),
                    };
                    annotations.insert(REVISION_HISTORY_ANNOTATION.into(), json!(history));
                }
            }
            let min_ready = int(&self.d["spec"]["minReadySeconds"]).unwrap_or(0);
            let min_ready_differs =
                int(&rs.obj["spec"]["minReadySeconds"]).unwrap_or(0) != min_ready;
            if !annotations.is_empty() || min_ready_differs {
                let mut patch = json!({"metadata": {"annotations": annotations}});
                if min_ready_differs {
                    patch["spec"] = json!({"minReadySeconds": min_ready});
                }
                self.actions.push(Action::Patch {
                    kind: Kind::ReplicaSet,
                    namespace: self.ns().to_string(),
                    name: rs.name.clone(),
                    patch,
                });
                if rs.revision < new_revision {
                    self.rss[i].revision = new_revision;
                }
            }
            let revision = self.rss[i].revision.to_string();
            self.set_deployment_revision(&revision);
            if self.progress_deadline.is_some() && self.status.condition("Progressing").is_none() {
                let msg = format!("Found new replica set \"{}\"", self.rss[i].name);
                let c = dcondition(
                    "Progressing",
                    "True",
                    "FoundNewReplicaSet",
                    &msg,
                    self.clock,
                );
                self.status.set_condition(c);
            }
            return;
        }
        if !create {
            return;
        }
        let hash = pod_template_hash(template, self.status.collision_count);
        let rs_name = format!("{}-{hash}", self.name());
        if self.rss.iter().any(|r| r.name == rs_name) {
            // A hash collision with one of ours that has another template.
            self.status.collision_count = Some(self.status.collision_count.unwrap_or(0) + 1);
            return;
        }
        let mut new_template = template.clone();
        new_template["metadata"]["labels"][TEMPLATE_HASH_LABEL] = json!(hash);
        let mut selector = self.d["spec"]["selector"].clone();
        selector["matchLabels"][TEMPLATE_HASH_LABEL] = json!(hash);
        let mut labels = template["metadata"]["labels"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        labels.insert(TEMPLATE_HASH_LABEL.into(), json!(hash));
        let mut annotations: Map<String, Value> = copied_annotations(self.d).into_iter().collect();
        annotations.insert(REVISION_ANNOTATION.into(), json!(new_revision.to_string()));
        annotations.insert(
            DESIRED_REPLICAS_ANNOTATION.into(),
            json!(self.replicas.to_string()),
        );
        annotations.insert(
            MAX_REPLICAS_ANNOTATION.into(),
            json!((self.replicas + self.max_surge).to_string()),
        );
        let all = self.all_indices();
        let replicas = self.new_rs_replicas(&all, 0);
        let body = json!({
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": rs_name, "namespace": self.ns(), "labels": labels,
                "annotations": annotations,
                "ownerReferences": [owner_reference(Kind::Deployment, self.d)],
            },
            "spec": {
                "replicas": replicas,
                "minReadySeconds": int(&self.d["spec"]["minReadySeconds"]).unwrap_or(0),
                "selector": selector,
                "template": new_template,
            },
        });
        self.actions.push(Action::Create {
            kind: Kind::ReplicaSet,
            namespace: self.ns().to_string(),
            body: body.clone(),
            event: None,
        });
        if replicas > 0 {
            self.event(
                "Normal",
                "ScalingReplicaSet",
                format!("Scaled up replica set {rs_name} to {replicas}"),
            );
        }
        let mut view = RsView::new(&body);
        view.created = Some(self.clock.now);
        self.rss.push(view);
        self.new_rs = Some(self.rss.len() - 1);
        self.set_deployment_revision(&new_revision.to_string());
        if self.progress_deadline.is_some() {
            let msg = format!("Created new replica set \"{rs_name}\"");
            let c = dcondition(
                "Progressing",
                "True",
                "NewReplicaSetCreated",
                &msg,
                self.clock,
            );
            self.status.set_condition(c);
        }
    }

    pub(super) fn set_deployment_revision(&mut self, revision: &str) {
        if annotation(self.d, REVISION_ANNOTATION) != Some(revision) {
            self.actions.push(Action::Patch {
                kind: Kind::Deployment,
                namespace: self.ns().to_string(),
                name: self.name().to_string(),
                patch: json!({"metadata": {"annotations": {REVISION_ANNOTATION: revision}}}),
            });
        }
    }

    /// Go's `NewRSNewReplicas`.
    pub(super) fn new_rs_replicas(&self, all: &[usize], new_current: i32) -> i32 {
        if self.recreate {
            return self.replicas;
        }
        let current = self.sum(all, |r| r.replicas);
        let max_total = self.replicas + self.max_surge;
        if current >= max_total {
            return new_current;
        }
        let up = (max_total - current).min(self.replicas - new_current);
        new_current + up
    }

    /// Go's `scaleReplicaSet`: a new size (and the replica annotations);
    /// true when the size changed.
    pub(super) fn scale(&mut self, i: usize, to: i32) -> bool {
        let from = self.rss[i].replicas;
        let desired = self.replicas.to_string();
        let max = (self.replicas + self.max_surge).to_string();
        let annotations_stale = annotation(&self.rss[i].obj, DESIRED_REPLICAS_ANNOTATION)
            != Some(desired.as_str())
            || annotation(&self.rss[i].obj, MAX_REPLICAS_ANNOTATION) != Some(max.as_str());
        if from == to && !annotations_stale {
            return false;
        }
        let name = self.rss[i].name.clone();
        self.actions.push(Action::Patch {
            kind: Kind::ReplicaSet,
            namespace: self.ns().to_string(),
            name: name.clone(),
            patch: json!({
                "metadata": {"annotations": {
                    DESIRED_REPLICAS_ANNOTATION: desired, MAX_REPLICAS_ANNOTATION: max,
                }},
                "spec": {"replicas": to},
            }),
        });
        let rs = &mut self.rss[i];
        rs.replicas = to;
        let ann = &mut rs.obj["metadata"]["annotations"];
        if !ann.is_object() {
            *ann = json!({});
        }
        ann[DESIRED_REPLICAS_ANNOTATION] = json!(desired);
        ann[MAX_REPLICAS_ANNOTATION] = json!(max);
        if from == to {
            return false;
        }
        let op = if to > from { "up" } else { "down" };
        self.event(
            "Normal",
            "ScalingReplicaSet",
            format!("Scaled {op} replica set {name} to {to} from {from}"),
        );
        true
    }

    /// Go's `isScalingEvent`.
    pub(super) fn is_scaling_event(&self) -> bool {
        self.rss.iter().filter(|r| r.replicas > 0).any(|r| {
            r.annotation_int(DESIRED_REPLICAS_ANNOTATION)
                .is_some_and(|d| d != self.replicas)
        })
    }

    /// Go's `DeploymentController.scale`: one active ReplicaSet takes the
    /// whole size; otherwise proportional scaling across active ones.
    pub(super) fn proportional_scale(&mut self) {
        let mut olds = self.old_indices();
        olds.sort_by(|a, b| by_creation(&self.rss[*b], &self.rss[*a]));
        let mut active: Vec<usize> = olds
            .iter()
            .copied()
            .chain(self.new_rs)
            .filter(|i| self.rss[*i].replicas > 0)
            .collect();
        let target = match active.len() {
            0 => self.new_rs.or(olds.first().copied()),
            1 => Some(active[0]),
            _ => None,
        };
        if let Some(i) = target {
            // Unlike the real controller, stale replica annotations are
            // refreshed even when the size is right, so that a hand-made
            // ReplicaSet cannot leave the Deployment in a scaling event.
            self.scale(i, self.replicas);
            return;
        }
        if let Some(n) = self.new_rs {
            let rs = &self.rss[n];
            if rs.replicas == self.replicas
                && rs.annotation_int(DESIRED_REPLICAS_ANNOTATION) == Some(self.replicas)
                && rs.available == self.replicas
            {
                for i in olds {
                    if self.rss[i].replicas > 0 {
                        self.scale(i, 0);
                    }
                }
                return;
            }
        }
        if self.recreate {
            return;
        }
        let current = self.sum(&active, |r| r.replicas);
        let allowed = if self.replicas > 0 {
            self.replicas + self.max_surge
        } else {
            0
        };
        let to_add = allowed - current;
        if to_add > 0 {
            active.sort_by(|a, b| {
                let (x, y) = (&self.rss[*a], &self.rss[*b]);
                y.replicas.cmp(&x.replicas).then(by_creation(y, x))
            });
        } else if to_add < 0 {
            active.sort_by(|a, b| {
                let (x, y) = (&self.rss[*a], &self.rss[*b]);
                y.replicas.cmp(&x.replicas).then(by_creation(x, y))
            });
        }
        let mut added = 0;
        let mut sizes: Vec<i32> = Vec::new();
        for i in &active {
            let rs = &self.rss[*i];
            if to_add == 0 || rs.replicas == 0 || to_add == added {
                sizes.push(rs.replicas);
                continue;
            }
            let fraction = if self.replicas == 0 {
                -rs.replicas
            } else {
                let before = rs
                    .annotation_int(MAX_REPLICAS_ANNOTATION)
                    .filter(|m| *m != 0)
                    .unwrap_or(self.stored.replicas);
                if before == 0 {
                    0
                } else {
                    let size = f64::from(rs.replicas) * f64::from(allowed) / f64::from(before);
                    size.round() as i32 - rs.replicas
                }
            };
            let left = to_add - added;
            let proportion = if to_add > 0 {
                fraction.min(left)
            } else {
                fraction.max(left)
            };
            sizes.push(rs.replicas + proportion);
            added += proportion;
        }
        if let Some(first) = sizes.first_mut()
            && to_add != 0
        {
            *first = (*first + to_add - added).max(0);
        }
        for (i, size) in active.into_iter().zip(sizes) {
            self.scale(i, size);
        }
    }

    /// Go's `cleanupDeployment`: old, empty ReplicaSets beyond
    /// `revisionHistoryLimit`, oldest revision first.
    pub(super) fn cleanup(&mut self) {
        let limit = int(&self.d["spec"]["revisionHistoryLimit"])
            .unwrap_or(10)
            .max(0) as usize;
        let mut cleanable: Vec<usize> = self
            .old_indices()
            .into_iter()
            .filter(|i| !deleting(&self.rss[*i].obj))
            .collect();
        if cleanable.len() <= limit {
            return;
        }
        cleanable.sort_by(|a, b| {
            let (x, y) = (&self.rss[*a], &self.rss[*b]);
            x.revision.cmp(&y.revision).then(by_creation(x, y))
        });
        let diff = cleanable.len() - limit;
        for i in cleanable.into_iter().take(diff) {
            let rs = &self.rss[i];
            let generation = int(&rs.obj["metadata"]["generation"]).unwrap_or(0);
            let observed = int(&rs.obj["status"]["observedGeneration"]).unwrap_or(0);
            if rs.status_replicas != 0 || rs.replicas != 0 || generation > observed {
                continue;
            }
            self.actions.push(Action::Delete {
                kind: Kind::ReplicaSet,
                namespace: self.ns().to_string(),
                name: rs.name.clone(),
                uid: uid(&rs.obj).to_string(),
                event: None,
            });
        }
    }

    /// Go's `calculateStatus`.
    pub(super) fn calculate_status(&mut self) {
        let all = self.all_indices();
        let available = self.sum(&all, |r| r.available);
        let total = self.sum(&all, |r| r.replicas);
        self.status.observed_generation = int(&self.d["metadata"]["generation"]).unwrap_or(0);
        self.status.replicas = self.sum(&all, |r| r.status_replicas);
        self.status.updated = self.new_rs.map_or(0, |i| self.rss[i].status_replicas);
        self.status.ready = self.sum(&all, |r| r.ready);
        self.status.available = available;
        self.status.unavailable = (total - available).max(0);
        let c = if available >= self.replicas - self.max_unavailable_for_status() {
            dcondition(
                "Available",
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
                self.clock,
            )
        } else {
            dcondition(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
                self.clock,
            )
        };
        self.status.set_condition(c);
    }

    /// Go's `DeploymentComplete` on a status.
    pub(super) fn complete(&self, s: &DStatus) -> bool {
        s.updated == self.replicas
            && s.replicas == self.replicas
            && s.available == self.replicas
            && s.observed_generation >= int(&self.d["metadata"]["generation"]).unwrap_or(0)
    }

    /// Go's `syncRolloutStatus`: the status plus the Progressing condition.
    pub(super) fn rollout_status(&mut self) {
        self.calculate_status();
        let Some(deadline) = self.progress_deadline else {
            self.status.remove_condition("Progressing");
            return;
        };
        let current = self.status.condition("Progressing").cloned();
        let complete_deployment = self.status.replicas == self.status.updated
            && current
                .as_ref()
                .is_some_and(|c| str_at(c, &["reason"]) == NEW_RS_AVAILABLE);
        if complete_deployment {
            return;
        }
        let rs_name = self.new_rs.map(|i| self.rss[i].name.clone());
        let subject = |what: &str| match &rs_name {
            Some(n) => format!("ReplicaSet \"{n}\" {what}"),
            None => format!("Deployment \"{}\" {what}", name(self.d)),
        };
        let (s, old) = (&self.status, &self.stored);
        let progressing = s.updated > old.updated
            || (s.replicas - s.updated) < (old.replicas - old.updated)
            || s.ready > old.ready
            || s.available > old.available;
        if self.complete(&self.status) {
            let msg = subject("has successfully progressed.");
            let c = dcondition("Progressing", "True", NEW_RS_AVAILABLE, &msg, self.clock);
            self.status.set_condition(c);
        } else if progressing {
            let msg = subject("is progressing.");
            let mut c = dcondition("Progressing", "True", "ReplicaSetUpdated", &msg, self.clock);
            if let Some(cur) = current {
                if str_at(&cur, &["status"]) == "True" {
                    c["lastTransitionTime"] = cur["lastTransitionTime"].clone();
                }
                self.status.remove_condition("Progressing");
            }
            self.status.set_condition(c);
        } else if let Some(cur) = current
            && !matches!(str_at(&cur, &["reason"]), NEW_RS_AVAILABLE | TIMED_OUT)
            && let Some(from) = time_of(&cur["lastUpdateTime"])
        {
            // Go's `DeploymentTimedOut`, and `requeueStuckDeployment`.
            let at = from + self.clock.scaled(deadline as f64);
            if at < self.clock.now {
                let msg = subject("has timed out progressing.");
                let c = dcondition("Progressing", "False", TIMED_OUT, &msg, self.clock);
                self.status.set_condition(c);
            } else {
                let wake = self.clock.wake_at(at + chrono::Duration::milliseconds(500));
                self.actions.push(wake);
            }
        }
    }

    /// Go's `rolloutRolling`.
    pub(super) fn rolling(&mut self) {
        self.sync_revision(true);
        let Some(n) = self.new_rs else {
            // A collision: try again with the new count.
            return;
        };
        let all = self.all_indices();
        // reconcileNewReplicaSet
        let new_replicas = self.rss[n].replicas;
        if new_replicas != self.replicas {
            let to = if new_replicas > self.replicas {
                self.replicas
            } else {
                self.new_rs_replicas(&all, new_replicas)
            };
            if self.scale(n, to) {
                return self.rollout_status();
            }
        }
        // reconcileOldReplicaSets
        if self.scale_down_old() {
            return self.rollout_status();
        }
        if self.complete(&self.stored) {
            self.cleanup();
        }
        self.rollout_status();
    }

    /// Go's `reconcileOldReplicaSets` (with `cleanupUnhealthyReplicas` and
    /// `scaleDownOldReplicaSetsForRollingUpdate`).
    pub(super) fn scale_down_old(&mut self) -> bool {
        let Some(n) = self.new_rs else { return false };
        let mut olds: Vec<usize> = self
            .old_indices()
            .into_iter()
            .filter(|i| self.rss[*i].replicas > 0)
            .collect();
        if olds.is_empty() {
            return false;
        }
        olds.sort_by(|a, b| by_creation(&self.rss[*a], &self.rss[*b]));
        let all = self.all_indices();
        let all_pods = self.sum(&all, |r| r.replicas);
        let min_available = self.replicas - self.max_unavailable_for_status();
        let new_unavailable = self.rss[n].replicas - self.rss[n].available;
        let max_scaled_down = all_pods - min_available - new_unavailable;
        if max_scaled_down <= 0 {
            return false;
        }
        // Unhealthy old replicas go first: they cannot make things worse.
        let mut cleaned = 0;
        for &i in &olds {
            if cleaned >= max_scaled_down {
                break;
            }
            let rs = &self.rss[i];
            if rs.replicas == 0 || rs.replicas == rs.available {
                continue;
            }
            let down = (max_scaled_down - cleaned).min(rs.replicas - rs.available);
            let to = rs.replicas - down;
            self.scale(i, to);
            cleaned += down;
        }
        // Then healthy ones, keeping minAvailable.
        let available = self.sum(&all, |r| r.available);
        let mut scaled = 0;
        if available > min_available {
            let total = available - min_available;
            for &i in &olds {
                if scaled >= total {
                    break;
                }
                let r = self.rss[i].replicas;
                if r == 0 {
                    continue;
                }
                let down = r.min(total - scaled);
                self.scale(i, r - down);
                scaled += down;
            }
        }
        cleaned + scaled > 0
    }

    /// Go's `rolloutRecreate`.
    pub(super) fn recreate(&mut self) {
        self.sync_revision(false);
        let olds = self.old_indices();
        let mut scaled = false;
        for i in olds.iter().copied() {
            if self.rss[i].replicas > 0 {
                scaled |= self.scale(i, 0);
            }
        }
        if scaled {
            return self.rollout_status();
        }
        let old_running = self.sum(&olds, |r| r.status_replicas) > 0
            || olds.iter().any(|i| {
                self.kind_pods
                    .get(uid(&self.rss[*i].obj))
                    .is_some_and(|pods| pods.iter().any(|p| !pod_terminal(p)))
            });
        if old_running {
            return self.rollout_status();
        }
        if self.new_rs.is_none() {
            self.sync_revision(true);
        }
        if let Some(n) = self.new_rs {
            self.scale(n, self.replicas);
        }
        if self.complete(&self.stored) {
            self.cleanup();
        }
        self.rollout_status();
    }

    /// Go's `sync` (paused, or a scaling event).
    pub(super) fn sync_scaling(&mut self, paused: bool) {
        self.sync_revision(false);
        self.proportional_scale();
        if paused {
            self.cleanup();
        }
        self.calculate_status();
    }

    pub(super) fn run(mut self) -> Vec<Action> {
        let paused = self.d["spec"]["paused"].as_bool() == Some(true);
        if deleting(self.d) {
            self.sync_revision(false);
            self.calculate_status();
        } else {
            // checkPausedConditions
            if self.progress_deadline.is_some() {
                let reason = self
                    .status
                    .condition("Progressing")
                    .map(|c| str_at(c, &["reason"]).to_string());
                if paused && reason.as_deref() != Some("DeploymentPaused") {
                    let c = dcondition(
                        "Progressing",
                        "Unknown",
                        "DeploymentPaused",
                        "Deployment is paused",
                        self.clock,
                    );
                    self.status.set_condition(c);
                } else if !paused && reason.as_deref() == Some("DeploymentPaused") {
                    let c = dcondition(
                        "Progressing",
                        "Unknown",
                        "DeploymentResumed",
                        "Deployment is resumed",
                        self.clock,
                    );
                    self.status.set_condition(c);
                }
            }
            let scaling = {
                let mut probe = self.clone_light();
                probe.sync_revision(false);
                probe.is_scaling_event()
            };
            if paused || scaling {
                self.sync_scaling(paused);
            } else if self.recreate {
                self.recreate();
            } else {
                self.rolling();
            }
        }
        let desired = self.status.to_map();
        if status_differs(&self.d["status"], &desired, D_STATUS_FIELDS) {
            self.actions.push(Action::PatchStatus {
                kind: Kind::Deployment,
                namespace: self.ns().to_string(),
                name: self.name().to_string(),
                patch: status_patch(&desired, D_STATUS_FIELDS),
            });
        }
        self.actions
    }

    pub(super) fn clone_light(&self) -> DeploymentSync<'a> {
        DeploymentSync {
            d: self.d,
            clock: self.clock,
            kind_pods: self.kind_pods,
            replicas: self.replicas,
            recreate: self.recreate,
            max_surge: self.max_surge,
            max_unavailable: self.max_unavailable,
            progress_deadline: self.progress_deadline,
            rss: self.rss.clone(),
            new_rs: self.new_rs,
            stored: self.stored.clone(),
            status: self.status.clone(),
            actions: Vec::new(),
        }
    }
}
