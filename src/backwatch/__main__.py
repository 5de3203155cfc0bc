from backwatch.cli import main

if __name__ == "__main__":
    main(prog_name="backwatch")  # messages say `backwatch …`, not `python -m backwatch …`
