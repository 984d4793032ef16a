"""The admin registry as an SSH shell (``AdminShell``), on twisted.conch.

Logging in
    Public keys only: the keys in ``AuthorizedKeysFile`` (OpenSSH's format, one key per
    line; ``#`` comments; lines with options such as ``from=`` are ignored, because they
    are not enforced), read again at every login.  Any user name is accepted.  No
    passwords, no keyboard-interactive: the server offers only ``publickey``.  The host
    key is an ed25519 key kept at ``HostKeyFile`` (made on first start, mode 0600, its
    directory created; ``HostKeyFile.pub`` holds the public half for known_hosts).

Using it
    ``ssh -p PORT node`` gives a prompt where every admin method is a command
    (``getPeers``, ``getNodeInfo key=…``, ``addPeer uri=tls://…``), with tab completion of
    command and argument names, history, ``help`` and ``help CMD``, ``exit``.  Replies are
    printed as yggdrasilctl prints them (``ygg.admin.tables``), as JSON where it has no
    table, or as JSON always with ``-json`` on the line.  ``ssh node getPeers`` runs one
    command and exits with 0, or 1 on an error (written to stderr); without a terminal
    (``echo getSelf | ssh -T node``) the shell reads commands line by line.

Modules
    ``commands`` (what a line does), ``terminal`` (the line editor, plain lines),
    ``channel`` (the SSH session channel, avatar and realm), ``keyfiles`` (host key,
    authorized keys, the checker), ``server`` (the SSH transport, its limits, the
    listening service).
"""

from ygg.admin.shell.server import AdminShellService

__all__ = ["AdminShellService"]
