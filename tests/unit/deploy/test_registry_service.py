"""The registry service's build and launch recipe (no JVM, no Maven)."""

import xml.etree.ElementTree as ET
from string import Template

from deploy import local
from deploy.registry import EVERIT_VERSION, TEMPLATES, Registry
from streams.settings import Settings


def test_opt_in_and_known():
    assert "registry" in local.KNOWN and "registry" not in local.SERVICES


def test_pom_pins_the_app_to_the_parent_version():
    pom = Template((TEMPLATES / "registry-pom.xml").read_text()).substitute(
        version="2.4.2.Final", everit_version=EVERIT_VERSION)
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    root = ET.fromstring(pom)
    assert root.find("m:parent/m:version", ns).text == root.find("m:version", ns).text == "2.4.2.Final"
    deps = {d.find("m:artifactId", ns).text: d for d in root.findall("m:dependencies/m:dependency", ns)}
    assert deps["apicurio-registry-app"].find("m:version", ns).text == "2.4.2.Final"
    plugin = root.find("m:build/m:plugins/m:plugin", ns)
    assert plugin.find("m:artifactId", ns).text == "quarkus-maven-plugin"
    assert plugin.find("m:version", ns).text == "${quarkus.version}"  # Apicurio's own Quarkus


def test_command_is_loopback_in_memory_and_marked(tmp_path, monkeypatch):
    monkeypatch.setenv("MURMUR_SERVICES__REGISTRY_PORT", "18999")
    reg = Registry(Settings(state_dir=tmp_path, cache_dir=tmp_path / "cache"))
    cmd = reg.command(reg.runner)
    assert "-Dquarkus.http.port=18999" in cmd and "-Dquarkus.http.host=127.0.0.1" in cmd
    assert "-Dquarkus.datasource.jdbc.url=jdbc:h2:mem:registry_db" in cmd
    assert set(reg.fingerprint().args) <= set(cmd)
    assert cmd[-2:] == ["-jar", str(reg.runner)]
    assert reg.url == "http://127.0.0.1:18999/apis/ccompat/v7"
    assert reg.ports() == [(18999, "MURMUR_SERVICES__REGISTRY_PORT")]
    assert not reg.is_built()  # an empty cache: the first `up` builds
