// A bake file in the shape kvc import understands (written for kvc's tests).
variable "SUFFIX" {
  default = "candidate"
}

variable "REGISTRY" {
  default = ""
}

target "common" {
  dockerfile = "Containerfile"
  platforms = ["linux/amd64", "linux/arm64"]
}

function "tag" {
  params = [image, tag]
  result = equal("", REGISTRY) ? "quay.io/example-org/${image}:${tag}-${SUFFIX}" : "${REGISTRY}/${image}:${tag}-${SUFFIX}"
}

target "ubuntu-22.04" {
  inherits = ["common"]
  tags = [tag("ubuntu", "22.04"), # tag("ubuntu", "jammy"),
  ]
  args = { FLAVOR = "ubuntu-22.04" }
}

target "ubuntu-24.04" {
  inherits = ["common"]
  tags = [
    tag("ubuntu", "24.04"),
    tag("ubuntu", "noble"),
  ]
  args = { FLAVOR = "ubuntu-24.04" }
}

target "debian-12" {
  inherits = ["common"]
  tags = [tag("debian", "12")]
  args = { FLAVOR = "debian-12" }
}

target "alma-9" {
  inherits = ["common"]
  tags = [tag("almalinux", "9")]
  args = { FLAVOR = "alma-9" }
}

target "coreos-40" {
  inherits = ["common"]
  tags = [tag("coreos", "40")]
  args = { FLAVOR = "coreos-40" }
}

target "router-23" {
  inherits = ["common"]
  platforms = ["linux/amd64"]
  tags = [
    tag("router", "23"),
    tag("router", "latest"),
  ]
  args = { FLAVOR = "router-23" }
}

target "archived-7" {
  inherits = ["common"]
  tags = [tag("archived", "7")]
  args = { FLAVOR = "archived-7" }
}
