from orroute.cli import main

main()
