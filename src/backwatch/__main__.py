from backwatch.cli import script

if __name__ == "__main__":
    script(prog_name="backwatch")  # messages say `backwatch …`, not `python -m backwatch …`
