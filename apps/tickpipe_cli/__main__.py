from tickpipe_cli.cli import main

raise SystemExit(main())
