from reverbsynth.cli import main

main()
