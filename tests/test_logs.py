"""Logging: journald priority prefixes, and the driver's DbgPrint forwarded."""
import io
import logging
import os
import subprocess
import sys
import textwrap

from ndisproxy import logs

from .netfixtures import require_net, unique_name  # noqa: F401 - fixtures


def test_journal_prefixes_only_when_stderr_is_the_journal(tmp_path):
    with open(tmp_path / "f", "w") as stream:
        st = os.fstat(stream.fileno())
        assert logs.stderr_is_journal({"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}, stream)
        assert not logs.stderr_is_journal({"JOURNAL_STREAM": "1:2"}, stream)
        assert not logs.stderr_is_journal({}, stream)
    record = logging.LogRecord("ndisproxy", logging.WARNING, "", 0, "ndis0: restarting",
                               None, None)
    assert logs.JournalFormatter("%(message)s").format(record) == "<4>ndis0: restarting"


def test_the_daemon_logs_dbgprint_with_the_adapter_name(require_net, tmp_path):  # noqa: F811
    name = unique_name("npl")
    config = tmp_path / "c.toml"
    config.write_text(f'[daemon]\nsocket = "{tmp_path}/s"\n' + textwrap.dedent(f"""
        [[adapter]]
        name = "{name}"
        driver = "mocknic"
        [adapter.wire]
        kind = "loopback"
    """))
    daemon = subprocess.Popen([sys.executable, "-m", "ndisproxy", "run", "-c", str(config)],
                              stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not any("driver: mocknic: MAC" in line for line in lines):
            line = daemon.stderr.readline()
            assert line, "".join(lines)
            lines.append(line)
        assert any(line.startswith(f"INFO ndisproxy: {name}: driver: mocknic: MAC")
                   for line in lines), lines
    finally:
        daemon.terminate()
        daemon.wait(timeout=20)
