from xhuma.cli import app

app(prog_name="xhuma")
