"""`tickpipe demo` and `tickpipe report`: the whole pipeline on this machine, and what it stored."""
