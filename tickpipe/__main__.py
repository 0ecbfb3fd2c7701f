from tickpipe.cli import main

raise SystemExit(main())
