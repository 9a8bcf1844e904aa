module meshcfg.local/tests/habits/kubectl_age

go 1.26.0

require k8s.io/apimachinery v0.36.3
