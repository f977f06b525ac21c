"""Drive a program through a pseudo-terminal like a person typing.

usage: pty-session.py <cwd> <command...>  (lines to type come on stdin)
Waits for the prompt "> " before typing each line, then prints the screen text:
everything the program wrote, with terminal escape sequences and carriage returns removed.
"""
import os, pty, re, select, sys, time

cwd, argv = sys.argv[1], sys.argv[2:]
lines = sys.stdin.read().splitlines()
pid, fd = pty.fork()
if pid == 0:
    os.chdir(cwd)
    os.execvp(argv[0], argv)

out = b''
def read_for(seconds, until=None):
    global out
    end = time.time() + seconds
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                return False
            if not chunk:
                return False
            out += chunk
        elif until is not None and until(clean(out)):
            return True
    return True

def clean(b):
    s = b.decode('utf-8', 'replace')
    s = re.sub(r'\x1b\[[0-9;?]*[A-Za-z]', '', s)
    return s.replace('\r', '')

for line in lines:
    read_for(10, lambda s: s.endswith('> '))
    for ch in line + '\r':
        os.write(fd, ch.encode())
read_for(10)
_, status = os.waitpid(pid, 0)
sys.stdout.write(clean(out))
sys.exit(os.waitstatus_to_exitcode(status))
