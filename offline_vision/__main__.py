from offline_vision.cli import main

main()
