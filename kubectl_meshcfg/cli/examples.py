"""The Examples section of every command's --help, as kubectl's help has one."""

from __future__ import annotations

import inspect

import click

EXAMPLES: dict[str, str] = {
    "kubectl-meshcfg": """
  # What does every sidecar in the namespace run with, and who set each field?
  kubectl meshcfg explain

  # The same for the bundled examples, no cluster needed
  kubectl meshcfg explain --local -f examples/ -A
""",
    "explain": """
  # Every field of one Deployment's sidecar: value, source, what it shadowed
  kubectl meshcfg explain deploy/web -n shop

  # Several targets, as kubectl takes them
  kubectl meshcfg explain deployment.apps/web pod/web-0
  kubectl meshcfg explain deploy web api

  # Pods with a label, as JSON
  kubectl meshcfg explain pods -l app=web -o json

  # Manifests on disk, before they reach a cluster
  kubectl meshcfg explain --local -f k8s/ -R -A
""",
    "lint": """
  # Every warning in the namespace; exit 3 when there is one
  kubectl meshcfg lint

  # Check manifests in CI
  kubectl meshcfg lint --local -f k8s/ -R -A || exit 1
""",
    "get": """
  # SidecarProxyConfigs in the current namespace, with scope, pods and conflicts
  kubectl meshcfg get spc

  # One object as YAML (managedFields only with --show-managed-fields)
  kubectl meshcfg get spc perf-sensitive -n ai -o yaml

  # Every namespace, with labels, no header line
  kubectl meshcfg get spc -A --show-labels --no-headers

  # Only the names, for scripts
  kubectl meshcfg get spc -o name | head -1
""",
    "apply": """
  # Validate everything, then server-side apply (other kinds are skipped)
  kubectl meshcfg apply -f configs/

  # Let the API server validate without writing anything
  kubectl meshcfg apply -f configs/ --dry-run=server

  # From a pipe
  kustomize build overlays/prod | kubectl meshcfg apply -f -
""",
    "delete": """
  # One object, or the ones in a file (other kinds in it are skipped)
  kubectl meshcfg delete perf-tiered -n ai
  kubectl meshcfg delete -f configs/ai.yaml

  # Every SidecarProxyConfig in a namespace, first as a server dry run
  kubectl meshcfg delete --all -n dev --dry-run=server
""",
    "diff": """
  # Which workloads a change would affect, field by field (exit 3 when some would)
  kubectl meshcfg diff -f configs/ai.yaml

  # Against manifests instead of a cluster
  kubectl meshcfg diff --local --base k8s/ -f configs/ai.yaml -o json
""",
    "render": """
  # The annotations and overrides that make the config real on stock Istio
  kubectl meshcfg render deploy/web -n shop

  # The whole Deployment with them merged in, piped into the real injector
  kubectl meshcfg render deploy/web -n shop --merge | istioctl kube-inject -f -
""",
    "sync": """
  # What would change, without changing it
  kubectl meshcfg sync -A --dry-run=server

  # Apply the rendered config and roll the workloads that changed
  kubectl meshcfg sync -n shop --restart
""",
    "admission": """
  # The admission objects for Git, from the manifests in the repository (no cluster)
  kubectl meshcfg admission render --local -f config/ -R > admission.yaml

  # What applying them would change in the cluster, then apply them
  kubectl meshcfg admission diff -A
  kubectl meshcfg admission apply -A --dry-run=server
""",
    "restart": """
  # Which workloads run a sidecar older than their config, without rolling them
  kubectl meshcfg restart -A --dry-run=client

  # Roll them (only kubectl.kubernetes.io/restartedAt changes)
  kubectl meshcfg restart -n shop -l app=web
""",
    "rollout-test": """
  # Restart a Deployment under load and see whether its clients noticed (exit 3 if they did)
  kubectl meshcfg rollout-test deploy/web -n shop --path /healthz

  # Long requests in flight, straight to the pods (no Service routing), as JSON for CI
  kubectl meshcfg rollout-test deploy/web --via endpoints --path /slow -c 8 -o json

  # Evict the pods one at a time, as kubectl drain does, with an image from your registry
  kubectl meshcfg rollout-test sts/db --evict --image registry.example.com/python:3.13-alpine
""",
    "completion": """
  # kubectl meshcfg <TAB> through kubectl: put kubectl_complete-meshcfg on PATH
  ln -s "$(command -v kubectl-meshcfg)" ~/.local/bin/kubectl_complete-meshcfg

  # Completion for running kubectl-meshcfg directly
  source <(kubectl-meshcfg completion bash)
  kubectl-meshcfg completion zsh > "${fpath[1]}/_kubectl-meshcfg"
  kubectl-meshcfg completion fish > ~/.config/fish/completions/kubectl-meshcfg.fish
""",
}


def add_examples(command: click.Command, name: str) -> None:
    """Append the Examples section; \\b before each paragraph keeps click from rewrapping it."""
    paragraphs = EXAMPLES[name].strip("\n").split("\n\n")
    section = "\n\n".join(f"\b\n{paragraph}" for paragraph in paragraphs)
    command.help = f"{inspect.cleandoc(command.help or '')}\n\nExamples:\n\n{section}"
