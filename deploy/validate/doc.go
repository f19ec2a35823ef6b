// Package validate checks callpub's deploy artefacts without a container
// engine or a cluster: the Dockerfile's build command, compose.yaml, the
// kustomize base in deploy/k8s, the alert rules and the Grafana dashboard.
//
// It is its own module (deploy/validate/go.mod) so that Kubernetes,
// kustomize and Prometheus stay out of the service's dependencies. Run it
// from this folder with `go test ./...`.
//
// Invariants it holds the artefacts to:
//   - every manifest decodes strictly into its API type (unknown fields fail);
//   - the rendered kustomization is consistent: selectors, ports, names and
//     secrets agree;
//   - it runs in group mode: a group id and a state topic of its own, no
//     shard settings, two replicas at least, and a grace period that lets a
//     stop finish its turn and leave the group;
//   - every environment variable set for callpub is one `callpub --help`
//     lists (or its NAME_FILE form), and every CCMS_SIM_* one `ccms-sim
//     --help` lists;
//   - every PromQL expression names only metrics callpub exports;
//   - the binaries build with the Dockerfile's exact `go build` command.
package validate
