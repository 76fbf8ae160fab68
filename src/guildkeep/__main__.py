from guildkeep.cli import main

main()
