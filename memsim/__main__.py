from memsim.cli import main

main(prog_name="memsim")
